"""The vector index: pure NumPy + Annoy, no Django.

Builds go into a new versioned directory with a manifest written last (sizes and checksums of every
file) and are published by an atomic symlink swap; ``current_index`` returns a memory-mapped reader that
follows the published build, verified when opened, or the previous good build when it is damaged
(``index_health`` says which).
"""

from .build import index_build
from .current import IndexHealth, current_index, index_health
from .manifest import IndexCorrupt, Manifest, manifest_read
from .publish import current_version, index_cleanup, index_publish
from .reader import DEFAULT_EXACT_THRESHOLD, DEFAULT_SEARCH_K, IndexReader

__all__ = [
    "DEFAULT_EXACT_THRESHOLD",
    "DEFAULT_SEARCH_K",
    "IndexCorrupt",
    "IndexHealth",
    "IndexReader",
    "Manifest",
    "current_index",
    "current_version",
    "index_build",
    "index_cleanup",
    "index_health",
    "index_publish",
    "manifest_read",
]
