"""The hnsw backend's stores as every process reads them (the worker writes: hnsw_writer).

Under SEARCH_INDEX_DIR/hnsw: ``stores/<model>/`` holds one store per model fingerprint (search.index.
hnsw), and the ``serving`` symlink (the alias) names the store queries use. This module is the
reading side (every process); the worker writes through search.services.hnsw_writer.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from pathlib import Path

from django.conf import settings

from search.index import IndexCorrupt
from search.index.hnsw import HnswStore, StoreMissing

logger = logging.getLogger(__name__)

SERVING_LINK = "serving"
STORES_DIR = "stores"
_lock = threading.Lock()
_stores: dict[str, HnswStore] = {}  # store folder -> this process's copy (reader, and writer in workers)


def hnsw_root() -> Path:
    return Path(settings.SEARCH_INDEX_DIR) / "hnsw"


def store_dir(fingerprint: str) -> Path:
    """A folder name per model: readable, and unique through a hash of the whole fingerprint."""
    readable = re.sub(r"[^A-Za-z0-9_.-]", "_", fingerprint)[:60]
    digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:10]
    return hnsw_root() / STORES_DIR / f"{readable}-{digest}"


def serving_store_dir() -> Path | None:
    try:
        target = os.readlink(hnsw_root() / SERVING_LINK)
    except OSError:
        return None
    return hnsw_root() / target


def hnsw_store(folder: Path | None) -> HnswStore | None:
    """This process's copy of the store in ``folder``, caught up with the writer; None when it has no
    snapshot or cannot be read (logged: searches then use the stored vectors exactly)."""
    if folder is None:
        return None
    key = str(folder)
    try:
        with _lock:
            store = _stores.get(key)
            if store is None:
                store = _stores[key] = HnswStore(
                    folder, ef=settings.SEARCH_HNSW_EF, exact_floats=settings.SEARCH_HNSW_FILTER_EXACT_FLOATS
                )
                return store
        store.refresh()
        return store
    except StoreMissing:
        return None
    except (IndexCorrupt, OSError, RuntimeError) as exc:
        logger.error("hnsw store %s cannot be read: %s", folder.name, exc)
        with _lock:
            _stores.pop(key, None)
        return None


def hnsw_query_store(fingerprint: str) -> HnswStore | None:
    return hnsw_store(store_dir(fingerprint))


def hnsw_serving() -> HnswStore | None:
    """The store the alias names (whatever its model: callers compare fingerprints)."""
    return hnsw_store(serving_store_dir())


def forget_hnsw_stores() -> None:
    with _lock:
        _stores.clear()
