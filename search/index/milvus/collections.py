"""Milvus collections of this shop: the client, their names, their schema and the serving alias.

One collection per model fingerprint, named ``<prefix>_<readable fingerprint>_<hash>``; the alias
``<prefix>_serving`` names the collection queries use. What a collection is (its model, when it was
made, how to load its model again, up to when changes were applied) is kept in its properties, so every
process, on any machine, reads it from the server.

pymilvus is imported here only, and only when a client is made: a site on another backend never pays
for it. A URI ending in ``.db`` is a Milvus Lite data folder (a test engine running inside the process
that opens it; one process at a time); ``http://host:19530`` is a Milvus server or cluster.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..store import StoreUnavailable

ID, VECTOR, PRODUCT, CATEGORY, PRICE, ACTIVE = "image", "vector", "product", "category", "price", "active"
METRIC = "IP"  # inner product of unit vectors = cosine similarity
# Properties (strings) of each collection.
FINGERPRINT, CREATED, EXTRA, MARK = "shop.fingerprint", "shop.created_at", "shop.extra", "shop.sync_mark"
SERVING = "serving"
# HNSW build parameters (the server's and Lite's meaning is the same); ef is a search setting.
HNSW_BUILD = {"M": 16, "efConstruction": 100}


class _LiteNoise(logging.Filter):
    """Milvus Lite answers no MVCC timestamp to query iterators (pymilvus then warns and uses the
    client's time, and Lite's gRPC server logs the unimplemented call as an error): harmless, once per
    iterator (a build, an exact search over many rows). A server answers it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "mvccTs" in record.getMessage():
            return False
        tb = record.exc_info[2] if record.exc_info else None
        while tb is not None:
            if tb.tb_frame.f_code.co_name == "AllocTimestamp":
                return False
            tb = tb.tb_next
        return True


class MilvusUnavailable(StoreUnavailable):
    """The Milvus server (or the Lite folder) cannot be reached or opened; the message says which."""


def milvus_client(uri: str, token: str = "", *, timeout: float = 10.0):
    """A pymilvus MilvusClient on ``uri``; MilvusUnavailable with the reason when it cannot connect."""
    from pymilvus import MilvusClient  # lazy: only the milvus backend needs pymilvus (and its weight)
    from pymilvus.exceptions import MilvusException

    if uri.endswith(".db"):
        for name in ("pymilvus.client.iterator.query_iterator", "grpc._server"):
            if not any(isinstance(f, _LiteNoise) for f in logging.getLogger(name).filters):
                logging.getLogger(name).addFilter(_LiteNoise())
    try:
        return MilvusClient(uri=uri, token=token, timeout=timeout)
    except MilvusException as exc:
        hint = ""
        if uri.endswith(".db"):
            hint = (
                " (a Milvus Lite folder is open in one process at a time: when several processes share it,"
                " serve it with `python -m milvus_lite server --data-dir PATH --port PORT` and set"
                " SEARCH_MILVUS_URI=http://127.0.0.1:PORT)"
            )
        raise MilvusUnavailable(f"cannot open Milvus at {uri}: {exc.message}{hint}") from exc


def collection_name(prefix: str, fingerprint: str) -> str:
    """Letters, digits and underscores only (Milvus's rule): readable, unique through a hash."""
    readable = re.sub(r"[^A-Za-z0-9]+", "_", fingerprint).strip("_")[:60]
    digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:10]
    return f"{prefix}_{readable}_{digest}"


def alias_name(prefix: str) -> str:
    return f"{prefix}_{SERVING}"


def index_params(client, index_type: str) -> Any:
    params = client.prepare_index_params()
    build = HNSW_BUILD if index_type.upper().startswith("HNSW") else {}
    params.add_index(field_name=VECTOR, index_type=index_type.upper(), metric_type=METRIC, params=build)
    return params


def collection_create(
    client, name: str, *, fingerprint: str, dim: int, index_type: str, extra: dict | None = None
) -> None:
    """The collection of one model: the image id as primary key, the vector, the attributes as scalar
    fields (filters run inside the search), and what it is as properties. Loaded, ready to search."""
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field(ID, DataType.INT64, is_primary=True)
    schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=dim)
    for field in (PRODUCT, CATEGORY, PRICE):
        schema.add_field(field, DataType.INT64)
    schema.add_field(ACTIVE, DataType.BOOL)
    properties = {
        FINGERPRINT: fingerprint,
        CREATED: datetime.now(UTC).isoformat(timespec="seconds"),
        EXTRA: json.dumps(extra or {}, sort_keys=True),
    }
    client.create_collection(
        name, schema=schema, index_params=index_params(client, index_type), properties=properties
    )
    client.load_collection(name)


def collection_load(client, name: str) -> None:
    """Searchable: a collection is released when the server (or Lite) restarts, until loaded again."""
    from pymilvus.client.types import LoadState

    if client.get_load_state(name).get("state") != LoadState.Loaded:
        client.load_collection(name)


@dataclass(frozen=True)
class CollectionFacts:
    name: str
    fingerprint: str
    dim: int
    created_at: str
    extra: dict
    sync_mark: float | None


def collection_facts(client, name: str) -> CollectionFacts:
    """What the collection (or the alias) ``name`` holds, from its schema and properties."""
    described = client.describe_collection(name)
    props = described.get("properties", {}) or {}
    dim = next(int(f["params"]["dim"]) for f in described["fields"] if f["name"] == VECTOR)
    mark = props.get(MARK)
    return CollectionFacts(
        name=described["collection_name"],
        fingerprint=props.get(FINGERPRINT, ""),
        dim=dim,
        created_at=props.get(CREATED, ""),
        extra=json.loads(props.get(EXTRA) or "{}"),
        sync_mark=float(mark) if mark not in (None, "") else None,
    )


def alias_target(client, alias: str) -> str | None:
    """The collection the alias names, None when there is no such alias (has_collection resolves
    aliases; asking describe_alias about a missing one would log an error in pymilvus)."""
    if not client.has_collection(alias):
        return None
    return client.describe_collection(alias)["collection_name"]


def alias_swap(client, alias: str, collection: str) -> None:
    """Point the alias at ``collection`` (atomically on the server: queries see the old or the new)."""
    if alias_target(client, alias) is None:
        client.create_alias(collection, alias)
    else:
        client.alter_alias(collection, alias)


def shop_collections(client, prefix: str) -> list[str]:
    """This shop's collections (another shop's prefix may start with this one: names are checked
    against the fingerprint each one records)."""
    found = []
    for name in client.list_collections():
        if name.startswith(f"{prefix}_") and not name.endswith(f"_{SERVING}"):
            fingerprint = collection_facts(client, name).fingerprint
            if name == collection_name(prefix, fingerprint):
                found.append(name)
    return sorted(found)
