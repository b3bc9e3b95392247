"""The vector store queries search, per backend (SEARCH_VECTOR_BACKEND), kept current cheaply.

- annoy: one store per model in each process: the serving build of that model (if any) plus an
  in-memory delta. Before each query the delta takes what changed since its last look
  (search.services.vector_sync): when nothing changed that is three small queries listing ids, and
  never a vector already held. A new build replaces the store.
- hnsw: the graph of the model, shared on disk, written by the worker; a query checks its version
  stamp (two readlinks and one stat) and replays what the writer logged since (search.services.hnsw).
- milvus: the model's collection on the Milvus server, written by the worker; nothing to catch up
  (search.services.milvus).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from django.conf import settings

from search.embedder import current_embedder
from search.index.annoy_store import AnnoyStore

from .state import SHARED_STORE_BACKENDS, ServingIndex
from .vector_sync import SyncCursor, SyncReport, cursor_outdated, removed_images_prune, store_sync

_MAX_MODELS = 2  # the serving model and, during a switch, the new one


@dataclass
class _Held:
    store: object
    cursor: SyncCursor
    lock: threading.Lock = field(default_factory=threading.Lock)


_lock = threading.Lock()
_held: dict[tuple, _Held] = {}  # (index folder, fingerprint) -> this process's annoy store of that model


def query_store(fingerprint: str, dim: int, serving: ServingIndex | None):
    """The store to search for vectors of this model, brought up to date (search.index.VectorStore)."""
    store = None
    if settings.SEARCH_VECTOR_BACKEND == "hnsw":
        from .hnsw import hnsw_query_store

        store = hnsw_query_store(fingerprint)
    elif settings.SEARCH_VECTOR_BACKEND == "milvus":
        from .milvus import milvus_query_store

        store = milvus_query_store(fingerprint)
    if store is not None and store.dim == dim:
        return store
    # No graph or collection of this model yet (nothing embedded since the backend was chosen), or the
    # server cannot be reached: exact search over the stored vectors, held in memory like the annoy
    # delta, until the worker writes one.
    return annoy_query_store(fingerprint, dim, serving)


def annoy_query_store(fingerprint: str, dim: int, serving: ServingIndex | None) -> AnnoyStore:
    build = serving if serving is not None and serving.fingerprint == fingerprint else None
    held = _held_store(fingerprint, dim, build)
    with held.lock:
        if cursor_outdated(held.cursor):
            held = _replace(fingerprint, _new_held(fingerprint, dim, build))
            held.lock.acquire()
            try:
                store_sync(held.store, held.cursor)
            finally:
                held.lock.release()
            return held.store
        store_sync(held.store, held.cursor)
    return held.store


def forget_query_stores() -> None:
    """Tests that swap databases or index folders."""
    from .hnsw import forget_hnsw_stores
    from .hnsw_writer import forget_hnsw_cursors

    with _lock:
        _held.clear()
    forget_hnsw_stores()
    forget_hnsw_cursors()
    if settings.SEARCH_VECTOR_BACKEND == "milvus":  # pymilvus is imported only under this backend
        from .milvus import forget_milvus_stores
        from .milvus_writer import forget_milvus_cursors

        forget_milvus_stores()
        forget_milvus_cursors()


def vector_stores_sync() -> str:
    """The worker's sync (task ``search.sync_vectors``): hnsw stores and milvus collections take what
    changed; photo deletions older than SEARCH_REMOVALS_KEEP_SECONDS are forgotten."""
    pruned = removed_images_prune()
    report = shared_store_sync(current_embedder())
    if report is None:
        return f"annoy stores follow by themselves; {pruned} old deletions pruned"
    return f"{report.upserted} vectors upserted, {report.deleted} deleted; {pruned} old deletions pruned"


def shared_store_sync(embedder) -> SyncReport | None:
    """The worker writes what changed to the store every process shares (hnsw, milvus): after embedding
    photos, after deletions and product changes, periodically. None under annoy (nothing shared)."""
    if settings.SEARCH_VECTOR_BACKEND not in SHARED_STORE_BACKENDS:
        return None
    if settings.SEARCH_VECTOR_BACKEND == "milvus":
        from .milvus_writer import milvus_sync

        return milvus_sync(embedder=embedder)
    from .hnsw_writer import hnsw_sync

    return hnsw_sync(embedder=embedder)


def _key(fingerprint: str) -> tuple:
    return (str(settings.SEARCH_INDEX_DIR), fingerprint)


def _held_store(fingerprint: str, dim: int, build: ServingIndex | None) -> _Held:
    version = build.version if build is not None else ""
    held = _held.get(_key(fingerprint))
    if held is not None and held.store.version == version and held.store.dim == dim:
        return held
    with _lock:
        held = _held.get(_key(fingerprint))
        if held is None or held.store.version != version or held.store.dim != dim:
            held = _new_held(fingerprint, dim, build)
            _held[_key(fingerprint)] = held
            while len(_held) > _MAX_MODELS:
                _held.pop(next(iter(_held)))
        return held


def _replace(fingerprint: str, held: _Held) -> _Held:
    with _lock:
        _held[_key(fingerprint)] = held
    return held


def _new_held(fingerprint: str, dim: int, build: ServingIndex | None) -> _Held:
    store = AnnoyStore(
        build.reader if build is not None else None,
        fingerprint=fingerprint,
        dim=dim,
        search_k=settings.SEARCH_ANNOY_SEARCH_K,
        exact_threshold=settings.SEARCH_EXACT_THRESHOLD,
        exact_floats=settings.SEARCH_ANNOY_FILTER_EXACT_FLOATS,
    )
    # The build holds every embedding up to this time: the delta starts there.
    until = build.until if build is not None else None
    return _Held(store=store, cursor=SyncCursor(mark=until))
