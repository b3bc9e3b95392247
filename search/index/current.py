"""The process-wide view of the published build, swapped to a new build without restart."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from .manifest import IndexCorrupt
from .publish import build_path, current_version
from .reader import IndexReader

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_readers: dict[str, IndexReader] = {}


def current_index(root: Path) -> IndexReader | None:
    """The reader of the published build under ``root``, or None when nothing is published.

    Each call does one readlink (microseconds), so a new build is picked up on the next query.
    The previous reader is only dropped from the cache, never closed: queries still holding it
    finish on its memory maps, which are released when the last reference goes.
    """
    key = os.path.abspath(root)
    version = current_version(Path(root))
    if version is None:
        return None
    cached = _readers.get(key)
    if cached is not None and cached.version == version:
        return cached
    with _lock:
        cached = _readers.get(key)
        if cached is not None and cached.version == version:
            return cached
        try:
            reader = IndexReader(build_path(Path(root), version))
        except (IndexCorrupt, OSError) as exc:
            # Keep serving the build we have rather than failing every query; the next call retries.
            logger.error("cannot open index build %s: %s", version, exc)
            return cached
        _readers[key] = reader
        return reader
