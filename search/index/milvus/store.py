"""The ``milvus`` backend: one Milvus collection per model, searched with the filter inside the engine.

Every process talks to the same server, so there is nothing to ship and nothing to replay: an upsert or
a delete is visible to the next search everywhere (the collections use Strong consistency). The
attributes are scalar fields and a VectorFilter becomes a boolean expression evaluated by the engine
during the search (``filter_expression``).

k is filled whenever k vectors pass: an approximate (HNSW) search with a selective filter may return
fewer than k (Milvus Lite's FAISS HNSW does, measured in docs/benchmarks.md); then the passing rows are
counted and, when more pass than were returned, scored exactly from their stored vectors, read from the
engine (never from the database).
"""

from __future__ import annotations

import numpy as np

from ..attrs import ALL, Attrs, VectorFilter
from ..manifest import Manifest
from ..rows import normalised_query, top_k
from ..store import normalised_rows
from .collections import (
    ACTIVE,
    CATEGORY,
    ID,
    MARK,
    METRIC,
    PRICE,
    PRODUCT,
    VECTOR,
    CollectionFacts,
    MilvusUnavailable,
    collection_facts,
    collection_load,
)

DEFAULT_EF = 128
BATCH = 2000  # rows per upsert / id list per query: well under the server's 64 MB message limit at 2048-d
MAX_TOPK = 16384  # the server's limit on k (and on query limits)


def filter_expression(flt: VectorFilter) -> str:
    """The filter as a Milvus boolean expression ("" = every row). Integers only: nothing to escape."""
    terms = []
    if flt.active_only:
        terms.append(f"{ACTIVE} == true")
    if flt.categories is not None:
        terms.append(f"{CATEGORY} in [{', '.join(str(int(c)) for c in sorted(flt.categories))}]")
    if flt.min_cents is not None:
        terms.append(f"{PRICE} >= {int(flt.min_cents)}")
    if flt.max_cents is not None:
        terms.append(f"{PRICE} <= {int(flt.max_cents)}")
    if flt.exclude_product is not None:
        terms.append(f"{PRODUCT} != {int(flt.exclude_product)}")
    return " and ".join(terms)


def _ids_expression(ids: np.ndarray) -> str:
    return f"{ID} in [{', '.join(str(int(i)) for i in ids)}]"


class MilvusStore:
    """One collection (of one model). ``client`` is a pymilvus MilvusClient."""

    backend = "milvus"

    def __init__(self, client, name: str, *, ef: int = DEFAULT_EF, facts: CollectionFacts | None = None):
        self.client, self.ef = client, ef
        self.facts = facts or collection_facts(client, name)
        self.name = self.facts.name
        self._mark = self.facts.sync_mark
        collection_load(client, self.name)

    # --- what it is ----------------------------------------------------------------------------

    @property
    def fingerprint(self) -> str:
        return self.facts.fingerprint

    @property
    def dim(self) -> int:
        return self.facts.dim

    @property
    def version(self) -> str:
        """The collection and when it was made: a collection dropped and made again is another version."""
        return f"{self.name}@{self.facts.created_at}"

    @property
    def sync_mark(self) -> float | None:
        return self._mark

    @property
    def manifest(self) -> Manifest:
        """What status and the query model need, in the shape of a build's manifest (no files)."""
        return Manifest(
            version=self.version,
            fingerprint=self.fingerprint,
            count=self.count(),
            dim=self.dim,
            index_dim=self.dim,
            pca=False,
            n_trees=0,
            metric=METRIC,
            built_at=self.facts.created_at,
            build_seconds=0.0,
            params={"backend": "milvus", "collection": self.name, "ef": self.ef, "mark": self._mark},
            extra=dict(self.facts.extra),
        )

    def count(self) -> int:
        rows = self.client.query(self.name, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def contains(self, ids: np.ndarray) -> np.ndarray:
        wanted = np.unique(np.asarray(ids, dtype=np.int64).reshape(-1))
        found: list[int] = []
        for start in range(0, len(wanted), BATCH):
            chunk = wanted[start : start + BATCH]
            rows = self.client.query(self.name, filter=_ids_expression(chunk), output_fields=[ID])
            found += [int(row[ID]) for row in rows]
        return np.asarray(sorted(found), dtype=np.int64)

    def refresh(self, facts: CollectionFacts | None = None) -> None:
        """Takes the properties again (the sync mark another process advanced): read now, or given."""
        self.facts = facts or collection_facts(self.client, self.name)
        self._mark = self.facts.sync_mark

    # --- changing ------------------------------------------------------------------------------

    def upsert(
        self, ids: np.ndarray, vectors: np.ndarray, attrs: Attrs, *, mark: float | None = None
    ) -> None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids):
            vectors = normalised_rows(vectors, ids)
            if vectors.shape[1] != self.dim:
                raise ValueError(f"vectors have {vectors.shape[1]} dimensions, this store holds {self.dim}")
            for start in range(0, len(ids), BATCH):
                part = slice(start, start + BATCH)
                rows = _rows(ids[part], attrs.take(np.arange(len(ids))[part]))
                for row, vector in zip(rows, vectors[part], strict=True):
                    row[VECTOR] = vector
                self.client.upsert(self.name, rows)
        self.mark_applied(mark)

    def update_attrs(self, ids: np.ndarray, attrs: Attrs) -> np.ndarray:
        """New attributes only (a partial upsert: no vector read or sent) for the ids it holds."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        held = np.isin(ids, self.contains(ids))
        rows = _rows(ids[held], attrs.take(np.flatnonzero(held)))
        for start in range(0, len(rows), BATCH):
            self.client.upsert(self.name, rows[start : start + BATCH], partial_update=True)
        return ids[~held]

    def delete(self, ids: np.ndarray, *, mark: float | None = None) -> None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        for start in range(0, len(ids), BATCH):
            self.client.delete(self.name, ids=[int(i) for i in ids[start : start + BATCH]])
        self.mark_applied(mark)

    def flush(self) -> None:
        """Seals what was written (after bulk writes: Lite searches unflushed rows far more slowly)."""
        self.client.flush(self.name)

    def all_ids(self) -> np.ndarray:
        """Every id the collection holds (a rebuild removes those the database no longer has)."""
        found: list[int] = []
        iterator = self.client.query_iterator(self.name, batch_size=BATCH * 4, filter="", output_fields=[ID])
        try:
            while batch := iterator.next():
                found += [int(row[ID]) for row in batch]
        finally:
            iterator.close()
        return np.asarray(found, dtype=np.int64)

    def mark_applied(self, mark: float | None) -> None:
        """Changes up to ``mark`` are applied. The sync mark lives with the collection (a property), so
        every writer reads the same; it never goes back."""
        if mark is None or (self._mark is not None and mark <= self._mark):
            return
        self.client.alter_collection_properties(self.name, properties={MARK: repr(float(mark))})
        self._mark = float(mark)

    # --- searching -----------------------------------------------------------------------------

    def search(
        self, vector: np.ndarray, k: int, flt: VectorFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        q = normalised_query(vector, self.dim, f"Milvus collection {self.name}")
        flt = flt or ALL
        k = min(k, MAX_TOPK)
        if k <= 0 or (flt.categories is not None and not flt.categories):
            return np.empty(0, np.int64), np.empty(0, np.float32)
        expression = filter_expression(flt)
        from pymilvus.exceptions import MilvusException

        try:
            ids, scores = self._engine_search(q, k, expression)
            if len(ids) < k:
                passing = self._passing(expression)
                if passing > len(ids):  # the approximate search missed some: score the passing rows exactly
                    ids, scores = self._exact(q, k, expression, passing)
        except MilvusException as exc:  # the server went away mid-query: the query service falls back
            raise MilvusUnavailable(f"Milvus search in {self.name} failed: {exc}") from exc
        return ids, np.clip(scores, 0.0, 1.0)

    def _engine_search(self, q: np.ndarray, k: int, expression: str) -> tuple[np.ndarray, np.ndarray]:
        found = self.client.search(
            self.name,
            data=[q],
            limit=k,
            filter=expression,
            output_fields=[ID],
            search_params={"metric_type": METRIC, "params": {"ef": max(self.ef, k)}},
        )[0]
        ids = np.fromiter((hit[ID] for hit in found), dtype=np.int64, count=len(found))
        scores = np.fromiter((hit["distance"] for hit in found), dtype=np.float32, count=len(found))
        return ids, scores

    def _passing(self, expression: str) -> int:
        rows = self.client.query(self.name, filter=expression, output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def _exact(self, q: np.ndarray, k: int, expression: str, passing: int) -> tuple[np.ndarray, np.ndarray]:
        if passing <= MAX_TOPK:  # one request (the server's limit on a query's rows)
            rows = self.client.query(self.name, filter=expression, output_fields=[ID, VECTOR], limit=passing)
            if not rows:
                return np.empty(0, np.int64), np.empty(0, np.float32)
            ids = np.fromiter((row[ID] for row in rows), dtype=np.int64, count=len(rows))
            return top_k(ids, np.asarray([row[VECTOR] for row in rows], dtype=np.float32) @ q, k)
        ids: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        iterator = self.client.query_iterator(
            self.name, batch_size=BATCH, filter=expression, output_fields=[ID, VECTOR]
        )
        try:
            while batch := iterator.next():
                ids.append(np.fromiter((row[ID] for row in batch), dtype=np.int64, count=len(batch)))
                scores.append(np.asarray([row[VECTOR] for row in batch], dtype=np.float32) @ q)
        finally:
            iterator.close()
        if not ids:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        return top_k(np.concatenate(ids), np.concatenate(scores), k)


def _rows(ids: np.ndarray, attrs: Attrs) -> list[dict]:
    return [
        {ID: int(i), PRODUCT: int(p), CATEGORY: int(c), PRICE: int(cents), ACTIVE: bool(a)}
        for i, p, c, cents, a in zip(
            ids.tolist(),
            attrs.product.tolist(),
            attrs.category.tolist(),
            attrs.price_cents.tolist(),
            attrs.active.tolist(),
            strict=True,
        )
    ]
