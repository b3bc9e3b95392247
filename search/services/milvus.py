"""The milvus backend's collections as every process reads them (the worker writes: milvus_writer).

On the server named by SEARCH_MILVUS_URI: one collection per model fingerprint (search.index.milvus)
and the alias ``<SEARCH_MILVUS_PREFIX>_serving``, which names the collection queries use. Each query
resolves the alias (one request) and searches the collection it names by that name, so the query's
model and the collection's always agree, even while a build swaps the alias; the collection it replaced
is kept until the next swap, so a query that resolved the alias just before finishes there.

A server that cannot be reached is logged and treated as "no collection": searches then compare the
stored vectors exactly (search.services.stores), and status says why.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from django.conf import settings

from search.index.milvus import (
    MilvusStore,
    MilvusUnavailable,
    alias_name,
    collection_facts,
    collection_name,
    milvus_client,
)

logger = logging.getLogger(__name__)

_lock = threading.Lock()
RETRY_SECONDS = 10.0
_failures: dict[tuple, tuple[float, str]] = {}  # (pid, uri, token) -> (retry after, why it failed)
_clients: dict[tuple, object] = {}  # (pid, uri, token) -> MilvusClient: gRPC channels do not survive fork
_stores: dict[tuple, MilvusStore] = {}  # (uri, collection) -> this process's handle on it


def milvus_errors() -> tuple[type[Exception], ...]:
    from pymilvus.exceptions import MilvusException

    return (MilvusUnavailable, MilvusException)


def milvus_connection():
    """This process's client for SEARCH_MILVUS_URI (made on first use). After a failed connection the
    next attempt waits RETRY_SECONDS (meanwhile MilvusUnavailable at once): queries do not each wait
    for a connection timeout while the server is down."""
    key = (os.getpid(), settings.SEARCH_MILVUS_URI, settings.SEARCH_MILVUS_TOKEN)
    with _lock:
        client = _clients.get(key)
        if client is not None:
            return client
        failed = _failures.get(key)
        if failed is not None and time.monotonic() < failed[0]:
            raise MilvusUnavailable(failed[1])
        try:
            client = _clients[key] = milvus_client(key[1], key[2])
        except MilvusUnavailable as exc:
            _failures[key] = (time.monotonic() + RETRY_SECONDS, str(exc))
            raise
        return client


def model_collection(fingerprint: str) -> str:
    return collection_name(settings.SEARCH_MILVUS_PREFIX, fingerprint)


def serving_alias() -> str:
    return alias_name(settings.SEARCH_MILVUS_PREFIX)


def milvus_store(name: str) -> MilvusStore | None:
    """A handle on the collection ``name``; None when it does not exist."""
    key = (settings.SEARCH_MILVUS_URI, name)
    store = _stores.get(key)
    if store is not None:
        return store
    client = milvus_connection()
    if not client.has_collection(name):
        return None
    store = MilvusStore(client, name, ef=settings.SEARCH_MILVUS_EF)
    with _lock:
        return _stores.setdefault(key, store)


def milvus_query_store(fingerprint: str) -> MilvusStore | None:
    """The collection of this model, or None (none yet, or the server cannot be reached: logged)."""
    try:
        return milvus_store(model_collection(fingerprint))
    except milvus_errors() as exc:
        logger.error("Milvus collection of %s cannot be read: %s", fingerprint, exc)
        return None


def milvus_serving() -> MilvusStore | None:
    """The collection the alias names (whatever its model: callers compare fingerprints), its
    properties read now (the sync mark the worker advanced)."""
    client = milvus_connection()
    alias = serving_alias()
    if not client.has_collection(alias):  # has_collection knows aliases
        return None
    facts = collection_facts(client, alias)  # the collection's own name and properties
    store = milvus_store(facts.name)
    if store is not None:
        store.refresh(facts)
    return store


def milvus_serving_problem() -> tuple[MilvusStore | None, str]:
    """(the serving collection or None, why it cannot be used: "" when it can or there is none)."""
    try:
        return milvus_serving(), ""
    except milvus_errors() as exc:
        return None, f"Milvus at {settings.SEARCH_MILVUS_URI} cannot be reached ({exc})"


def forget_milvus_stores() -> None:
    with _lock:
        _stores.clear()
        _failures.clear()
