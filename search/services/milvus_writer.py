"""The milvus backend's writer: the Celery worker keeps the collections in step with the database.

The same moments as the hnsw writer (after embedding photos, after a photo is deleted or products
change, periodically): the collection of the current model (created and filled from the stored vectors
the first time) and the serving one take what changed since their sync mark, a collection property
(search.services.vector_sync). Writers on any machine take turns (``_writer_lock``: a PostgreSQL
advisory lock; with SQLite, one machine, a file lock), so an older read never overwrites a newer one.

A build (search.services.builds) is how a model switch completes: the new model's collection, filled as
the worker re-embedded the catalog, is reconciled with the database in full (every done vector upserted,
whatever the database no longer has deleted), flushed, and the serving alias swapped to it. The
collection it replaced stays until the next swap (queries that resolved the alias just before finish
there); older collections of this shop are dropped.
"""

from __future__ import annotations

import fcntl
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import connection
from django.utils import timezone

from search.index.milvus import MilvusStore, alias_swap, collection_create, shop_collections

from .milvus import milvus_connection, milvus_serving, milvus_store, model_collection, serving_alias
from .shared_stores import SharedStores, cursor_sync, shared_stores_sync
from .vector_sync import SyncCursor, SyncReport, all_vector_arrays

logger = logging.getLogger(__name__)

_LOCK_KEY = 0x5EA2C5  # PostgreSQL advisory lock id of the milvus writer
FLUSH_AFTER_ROWS = 1000  # a sync that wrote this many rows seals them (Lite searches unflushed rows slowly)
FILL_BATCH = 20_000

_cursors: dict[str, SyncCursor] = {}  # collection -> where this writer process last synced it
_thread_lock = threading.Lock()


def forget_milvus_cursors() -> None:
    _cursors.clear()


def milvus_sync(*, embedder) -> SyncReport:
    """The writer's job: the current model's collection (created on first use) and the serving one take
    what changed in the database; the first collection written becomes the serving one."""
    with _writer_lock():
        return shared_stores_sync(_COLLECTIONS, embedder)


def milvus_rebuild(embedder, *, before_swap=None) -> MilvusStore:
    """A build under the milvus backend: the model's collection reconciled with the database in full,
    flushed, then made the serving one (the alias swap)."""
    with _writer_lock():
        client = milvus_connection()
        name = model_collection(embedder.fingerprint)
        previous = milvus_serving()
        store = milvus_store(name)
        if store is None:
            store = _created(name, embedder)  # filled from the stored vectors
        else:
            _fill(store, embedder.fingerprint, embedder.dim, remove_others=True)
        _sync_locked(store)  # what changed while it was filled
        if before_swap is not None:
            before_swap()  # e.g. the build's lease: a worker presumed dead must not swap the alias
        _serve(name)
        keep = {name, previous.name if previous is not None else name}
        _drop_others(client, keep)
        return store


def _created(name: str, embedder) -> MilvusStore:
    from search.embedding import embedder_spec

    collection_create(
        milvus_connection(),
        name,
        fingerprint=embedder.fingerprint,
        dim=embedder.dim,
        index_type=settings.SEARCH_MILVUS_INDEX,
        extra={"model": embedder.name, "embedder": embedder_spec(embedder)},
    )
    store = milvus_store(name)
    _fill(store, embedder.fingerprint, embedder.dim, remove_others=False)
    return store


def _fill(store: MilvusStore, fingerprint: str, dim: int, *, remove_others: bool) -> None:
    """Every done vector of the model, with its attributes; ``remove_others``: and nothing else."""
    started_at = timezone.now()  # rows committed later with earlier stamps: the sync's overlap finds them
    ids, vectors, attrs = all_vector_arrays(fingerprint, dim)
    for start in range(0, len(ids), FILL_BATCH):
        part = np.arange(start, min(start + FILL_BATCH, len(ids)))
        store.upsert(ids[part], vectors[part], attrs.take(part))
    if remove_others:
        store.delete(np.setdiff1d(store.all_ids(), ids))
    store.flush()
    store.refresh()
    store.mark_applied(started_at.timestamp())  # everything up to the fill's start is in it
    _cursors.pop(store.name, None)


def _sync_locked(store: MilvusStore) -> SyncReport:
    store.refresh()  # another writer may have gone further
    report = cursor_sync(store, _cursors, store.name)
    if report.upserted + report.deleted >= FLUSH_AFTER_ROWS:
        store.flush()
    return report


def _serving_name() -> str | None:
    serving = milvus_serving()
    return serving.name if serving is not None else None


def _serve(name: str) -> None:
    alias_swap(milvus_connection(), serving_alias(), name)


def _drop_others(client, keep: set[str]) -> None:
    for name in shop_collections(client, settings.SEARCH_MILVUS_PREFIX):
        if name not in keep:
            logger.info("Dropping the Milvus collection %s (no longer serving)", name)
            client.drop_collection(name)


@contextmanager
def _writer_lock() -> Iterator[None]:
    """One writer at a time: across machines on PostgreSQL (advisory lock), else on this machine."""
    with _thread_lock:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s)", [_LOCK_KEY])
            try:
                yield
            finally:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
            return
        folder = Path(settings.SEARCH_INDEX_DIR)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "milvus-writer.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


# Under the writer lock (milvus_sync holds it).
_COLLECTIONS = SharedStores(
    model_key=model_collection,
    serving_key=_serving_name,
    opened=milvus_store,
    created=_created,
    synced=_sync_locked,
    serve=_serve,
)
