"""What the writers of the shared stores (search.services.hnsw_writer, .milvus_writer) do alike: which
stores a sync writes, and where each writer process last synced each of them.

A sync writes the current model's store (created from the stored vectors the first time) and the
serving one, when that is another model's: until a build swaps the serving store, the previous model
still answers searches, so its deletions and attribute changes matter. The first store written becomes
the serving one. Each backend names its stores its own way (hnsw: a folder, milvus: a collection) and
says how to open, create, sync and serve one (SharedStores).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

from .vector_sync import SyncCursor, SyncReport, mark_time, same_mark, store_sync


@dataclass(frozen=True)
class SharedStores:
    """One backend's stores, each named by a key."""

    model_key: Callable[[str], Hashable]  # fingerprint -> the key of that model's store
    serving_key: Callable[[], Hashable | None]  # the serving store's key; None: none serves yet
    opened: Callable[[Hashable], object | None]  # the store, or None when it does not exist (yet)
    created: Callable[[Hashable, object], object | None]  # (key, embedder) -> a new store, filled
    synced: Callable[[object], SyncReport]  # the store takes what changed in the database
    serve: Callable[[Hashable], None]  # makes this store the serving one


def shared_stores_sync(stores: SharedStores, embedder) -> SyncReport:
    """Brings the current model's store (created on first use) and the serving store up to date with
    the database; the first store written becomes the serving one."""
    total = SyncReport()
    keys = [stores.model_key(embedder.fingerprint)]
    serving = stores.serving_key()
    if serving is not None and serving not in keys:
        keys.append(serving)  # the previous model still serves: its deletions and attributes matter
    for key in keys:
        store = stores.opened(key)
        if store is None and key == keys[0]:
            store = stores.created(key, embedder)
        if store is None:
            continue
        report = stores.synced(store)
        total.upserted += report.upserted
        total.deleted += report.deleted
        total.vectors_read += report.vectors_read
    if serving is None:
        stores.serve(keys[0])
    return total


def cursor_sync(store, cursors: dict[str, SyncCursor], key: str) -> SyncReport:
    """``store_sync`` from where this process last synced the store (``cursors[key]``), starting from
    what the store holds when another writer went further or a rebuild went back; the caller holds the
    store's writer lock."""
    store_mark = mark_time(store.sync_mark)
    cursor = cursors.get(key)
    if cursor is None or not same_mark(cursor.mark, store_mark):
        cursor = cursors[key] = SyncCursor(mark=store_mark)
    report = store_sync(store, cursor)
    cursor.mark = mark_time(store.sync_mark)
    return report
