"""The hnsw vector store (hnswlib): adds and deletes in place, a single writer, readers that follow it."""

from .files import graph_build, links_swap, log_path
from .store import DEFAULT_EF, DEFAULT_EXACT_FLOATS, HnswStore, StoreMissing

__all__ = [
    "DEFAULT_EF",
    "DEFAULT_EXACT_FLOATS",
    "HnswStore",
    "StoreMissing",
    "graph_build",
    "links_swap",
    "log_path",
]
