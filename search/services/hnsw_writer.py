"""The hnsw backend's writer: the Celery worker keeps the stores in step with the database.

After embedding photos, after a photo is deleted and after products change (and periodically) the worker
syncs the store of the current model (created from the stored vectors the first time) and the serving
store from the database (search.services.vector_sync). Saves and deletes need no build. A build
(search.services.builds) is still how a model switch completes: the new model's store is rebuilt from
scratch (compacting deleted rows) and the alias swapped to it; until then the previous model's store
keeps serving. Readers: search.services.hnsw.
"""

from __future__ import annotations

import fcntl
import logging
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from search.index import IndexCorrupt
from search.index.hnsw import HnswStore, graph_build, links_swap
from search.index.publish import index_cleanup, index_publish

from .hnsw import SERVING_LINK, STORES_DIR, hnsw_root, hnsw_store, serving_store_dir, store_dir
from .shared_stores import SharedStores, cursor_sync, shared_stores_sync
from .vector_sync import SyncCursor, SyncReport, all_vector_arrays

logger = logging.getLogger(__name__)

_cursors: dict[str, SyncCursor] = {}  # store folder -> where this writer process last synced it


def forget_hnsw_cursors() -> None:
    _cursors.clear()


def hnsw_sync(*, embedder) -> SyncReport:
    """The writer's job (worker): bring the current model's store (created on first use) and the serving
    store up to date with the database; the first store written becomes the serving one."""
    return shared_stores_sync(_STORES, embedder)


def hnsw_rebuild(embedder, *, before_swap=None) -> HnswStore:
    """A build under the hnsw backend: the model's store from scratch (deleted rows compacted away),
    published under the writer lock, caught up, then made the serving store (the alias swap)."""
    folder = store_dir(embedder.fingerprint)
    manifest = _graph_from_database(folder, embedder, publish=False)
    folder.mkdir(parents=True, exist_ok=True)
    store = hnsw_store(folder) or _reader_after_publish(folder, manifest.version)
    if before_swap is not None:
        before_swap()  # e.g. the build's lease: a worker presumed dead must not replace a newer store
    with store.writing():
        index_publish(folder, manifest.version)
        store.refresh()
        _sync_locked(store)
    _serve(folder)
    try:
        index_cleanup(folder, keep=settings.SEARCH_INDEX_KEEP_BUILDS)
    except OSError:
        logger.warning("Could not remove old hnsw snapshots", exc_info=True)
    return store


def _reader_after_publish(folder: Path, version: str) -> HnswStore:
    index_publish(folder, version)
    store = hnsw_store(folder)
    if store is None:
        raise IndexCorrupt(f"the new hnsw snapshot {version} cannot be read")
    return store


def _created(folder: Path, embedder) -> HnswStore | None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".create.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # two workers starting together build it once
        try:
            if hnsw_store(folder) is None:
                _graph_from_database(folder, embedder, publish=True)
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    return hnsw_store(folder)


def _graph_from_database(folder: Path, embedder, *, publish: bool):
    from search.embedding import embedder_spec

    started_at = timezone.now()  # rows committed later with earlier stamps: the sync's overlap finds them
    ids, vectors, attrs = all_vector_arrays(embedder.fingerprint, embedder.dim)
    return graph_build(
        folder,
        ids=ids,
        vectors=vectors,
        attrs=attrs,
        fingerprint=embedder.fingerprint,
        m=settings.SEARCH_HNSW_M,
        ef_construction=settings.SEARCH_HNSW_EF_CONSTRUCTION,
        mark=started_at.timestamp(),
        extra={"model": embedder.name, "embedder": embedder_spec(embedder)},
        publish=publish,
    )


def _sync(store: HnswStore) -> SyncReport:
    with store.writing():
        return _sync_locked(store)


def _sync_locked(store: HnswStore) -> SyncReport:
    report = cursor_sync(store, _cursors, str(store.store_dir))
    if store.logged_rows >= settings.SEARCH_HNSW_SNAPSHOT_CHANGES:
        store.snapshot()
        try:
            index_cleanup(store.store_dir, keep=settings.SEARCH_INDEX_KEEP_BUILDS)
        except OSError:
            logger.warning("Could not remove old hnsw snapshots", exc_info=True)
    return report


def _serve(folder: Path) -> None:
    links_swap(hnsw_root() / SERVING_LINK, f"{STORES_DIR}/{folder.name}")


_STORES = SharedStores(
    model_key=store_dir,
    serving_key=serving_store_dir,
    opened=hnsw_store,
    created=_created,
    synced=_sync,
    serve=_serve,
)
