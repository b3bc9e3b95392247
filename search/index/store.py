"""The vector-store seam: what the query and sync services need from any vector engine.

A store holds the vectors of ONE model (its ``fingerprint``): vectors of two models are never compared.
Ids are image ids; each vector carries ``Attrs`` (product, category, price, active) so filters run
inside the engine. Backends (``SEARCH_VECTOR_BACKEND``):

- ``annoy``: a published, immutable build (versioned directory, integrity manifest, atomic publish:
  ``index_build`` / ``index_publish``) plus a per-process in-memory delta that ``upsert`` / ``delete``
  change; a new build replaces both.
- ``hnsw``: one hnswlib graph per fingerprint that takes adds and deletes in place; a single writer
  appends changes to a log that readers replay, and writes snapshots (search.index.hnsw).
- ``milvus``: a distributed engine (search.index.milvus): one collection per fingerprint with the
  attributes as scalar fields, ``search`` with the filter as a Milvus expression, a model switch as
  "fill the new model's collection, then swap the serving alias", ``sync_mark`` a collection property.

Every store: ``search`` returns up to k ids with cosine similarity in [0, 1], best first, and returns
exactly k whenever at least k live vectors pass the filter.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from .attrs import Attrs, VectorFilter


class StoreUnavailable(RuntimeError):
    """A store's engine failed while answering (a server that went away mid-query): the caller falls
    back to what it can search without it; the message says which engine and why."""


@runtime_checkable
class VectorStore(Protocol):
    backend: str  # "annoy" | "hnsw" | "milvus"

    @property
    def fingerprint(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def version(self) -> str:
        """Changes whenever what the store serves was replaced (a build, a snapshot)."""
        ...

    @property
    def sync_mark(self) -> float | None:
        """Up to when (epoch seconds of the source rows' change times) changes were applied; None: never."""
        ...

    def upsert(
        self, ids: np.ndarray, vectors: np.ndarray, attrs: Attrs, *, mark: float | None = None
    ) -> None:
        """Add or replace these vectors (normalised here) with their attributes; ``mark`` advances
        ``sync_mark``."""
        ...

    def update_attrs(self, ids: np.ndarray, attrs: Attrs) -> np.ndarray:
        """New attributes for vectors the store holds (no vector read or sent); returns the ids it does
        not hold, which the caller upserts with their vectors."""
        ...

    def delete(self, ids: np.ndarray, *, mark: float | None = None) -> None: ...

    def search(
        self, vector: np.ndarray, k: int, flt: VectorFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, similarity) of the k nearest live vectors that pass ``flt``, best first."""
        ...

    def count(self) -> int:
        """Live vectors."""
        ...

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """The given ids the store holds a live vector for."""
        ...


def normalised_rows(vectors: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Unit rows; raises ValueError for a zero or non-finite one (names its id)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(ids):
        raise ValueError(
            f"vectors must be (n, dim) with one row per id, got {vectors.shape} for {len(ids)} ids"
        )
    norms = np.linalg.norm(vectors, axis=1)
    bad = ~np.isfinite(norms) | (norms == 0)
    if bad.any():
        raise ValueError(f"vectors must be finite and non-zero: image id {int(ids[np.argmax(bad)])} is not")
    return vectors / norms[:, None]
