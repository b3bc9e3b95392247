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
from .vector_sync import SyncCursor, SyncReport, all_vector_arrays, mark_time, same_mark, store_sync

logger = logging.getLogger(__name__)

_cursors: dict[str, SyncCursor] = {}  # store folder -> where this writer process last synced it


def forget_hnsw_cursors() -> None:
    _cursors.clear()


def hnsw_sync(*, embedder) -> SyncReport:
    """The writer's job (worker): bring the current model's store (created on first use) and the serving
    store up to date with the database; the first store written becomes the serving one."""
    total = SyncReport()
    folders = [store_dir(embedder.fingerprint)]
    serving = serving_store_dir()
    if serving is not None and serving not in folders:
        folders.append(serving)  # the previous model still serves: its deletions and attributes matter
    for folder in folders:
        store = hnsw_store(folder)
        if store is None and folder == folders[0]:
            store = _created(folder, embedder)
        if store is None:
            continue
        report = _sync(store)
        total.upserted += report.upserted
        total.deleted += report.deleted
        total.vectors_read += report.vectors_read
    if serving is None:
        links_swap(hnsw_root() / SERVING_LINK, f"{STORES_DIR}/{folders[0].name}")
    return total


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
    links_swap(hnsw_root() / SERVING_LINK, f"{STORES_DIR}/{folder.name}")
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
    key = str(store.store_dir)
    store_mark = mark_time(store.sync_mark)
    cursor = _cursors.get(key)
    if cursor is None or not same_mark(cursor.mark, store_mark):
        # Another writer went further, or a rebuild went back: start from what the store holds.
        cursor = _cursors[key] = SyncCursor(mark=store_mark)
    report = store_sync(store, cursor)
    if store.logged_rows >= settings.SEARCH_HNSW_SNAPSHOT_CHANGES:
        store.snapshot()
        try:
            index_cleanup(store.store_dir, keep=settings.SEARCH_INDEX_KEEP_BUILDS)
        except OSError:
            logger.warning("Could not remove old hnsw snapshots", exc_info=True)
    cursor.mark = mark_time(store.sync_mark)
    return report
