"""The ``annoy`` backend: a published build (immutable, memory-mapped) plus an in-memory delta.

Annoy cannot add or delete after a build, so everything that changed since the build lives in this
process's ``RowTable`` delta: new or re-embedded vectors are appended (searched exactly), deleted ones
and replaced build rows are killed, attribute changes (deactivated, new price) are applied in place.
The caller feeds the delta incrementally (search.services.vector_sync) and a new build replaces the
whole store.

Filtered search: when the rows of the build that pass the filter hold more than ``exact_floats`` vector
components (rows x dimensions: what an exact search scores), Annoy's candidates
are over-fetched in proportion (k / share, and search_k / share nodes inspected) and masked; otherwise,
or when the candidates still hold fewer than k passing rows, the passing rows are searched exactly.
Either way k is filled when k rows pass.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from .attrs import ALL, Attrs, VectorFilter
from .manifest import IndexCorrupt
from .reader import DEFAULT_EXACT_THRESHOLD, DEFAULT_SEARCH_K, MIN_CANDIDATES, OVERFETCH_FACTOR, IndexReader
from .rows import RowTable, RowTableStore, normalised_query
from .store import normalised_rows

# Up to this many vector components (rows x dim) passing a filter, they are searched exactly: exact cost
# grows with them, the trees' with 1 / share. ~30k rows at 256-d, ~6k at 1280-d. Measured by
# bench_index.py --backends (docs/benchmarks.md, "Vector backends").
DEFAULT_EXACT_FLOATS = 8_000_000


class AnnoyStore(RowTableStore):
    backend = "annoy"

    def __init__(
        self,
        reader: IndexReader | None,
        *,
        fingerprint: str = "",
        dim: int = 0,
        search_k: int = DEFAULT_SEARCH_K,
        exact_threshold: int = DEFAULT_EXACT_THRESHOLD,
        exact_floats: int = DEFAULT_EXACT_FLOATS,
    ) -> None:
        """``reader`` None: no build of this model serves; every vector is in the delta (exact)."""
        self.reader = reader
        self._fingerprint = reader.fingerprint if reader is not None else fingerprint
        self._dim = reader.dim if reader is not None else dim
        if reader is not None:
            attrs = reader.attrs if reader.attrs is not None else Attrs.unknown(len(reader))
            self.table = RowTable(reader.ids, reader.vectors, attrs)
        else:
            self.table = RowTable(np.empty(0, np.int64), np.empty((0, self._dim), np.float32), Attrs.empty())
        self.search_k, self.exact_threshold, self.exact_floats = search_k, exact_threshold, exact_floats
        self._mark: float | None = None
        self._lock = threading.RLock()

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def version(self) -> str:
        return self.reader.version if self.reader is not None else ""

    @property
    def delta_rows(self) -> int:
        """Rows appended since the build (live or not)."""
        return len(self.table) - self.table.base_count

    def upsert(
        self, ids: np.ndarray, vectors: np.ndarray, attrs: Attrs, *, mark: float | None = None
    ) -> None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        vectors = normalised_rows(vectors, ids)
        if vectors.shape[1] != self._dim:
            raise ValueError(f"vectors have {vectors.shape[1]} dimensions, this store holds {self._dim}")
        with self._lock:
            if len(ids):
                if self.reader is not None:
                    _checked(self.reader)  # upserts compare with the mapped vectors
                self.table.upsert(ids, vectors, attrs)
            self._advance(mark)

    def update_attrs(self, ids: np.ndarray, attrs: Attrs) -> np.ndarray:
        with self._lock:
            return self.table.update_attrs(np.asarray(ids, dtype=np.int64).reshape(-1), attrs)

    def delete(self, ids: np.ndarray, *, mark: float | None = None) -> None:
        with self._lock:
            if len(ids):
                self.table.delete(np.asarray(ids, dtype=np.int64))
            self._advance(mark)

    def search(
        self, vector: np.ndarray, k: int, flt: VectorFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        q = normalised_query(vector, self._dim, f"index {self.version or '(none)'} of {self._fingerprint}")
        with self._lock:
            if self.reader is not None:
                _checked(self.reader)
            mask, passing = self.table.passing(flt or ALL)
            if passing == 0 or k <= 0:
                return np.empty(0, np.int64), np.empty(0, np.float32)
            rows, scores = self._search_rows(q, min(k, passing), mask)
            return self.table.ids[rows], np.clip(scores, 0.0, 1.0)

    def _search_rows(self, q: np.ndarray, k: int, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        base_n = self.table.base_count
        base_mask = mask[:base_n]
        delta_rows = base_n + np.flatnonzero(mask[base_n:])
        base_passing = int(np.count_nonzero(base_mask))
        use_trees = (
            self.reader is not None
            and self.reader.has_annoy
            and base_n > self.exact_threshold
            and base_passing * self._dim > self.exact_floats
        )
        if not use_trees:
            return self.table.exact(q, k, np.flatnonzero(mask))
        # Over-fetch, and inspect more nodes, in proportion to what the filter lets through: about as
        # many passing candidates and passing nodes as an unfiltered search sees.
        share = base_passing / base_n
        fetch = min(base_n, math.ceil(max(k * OVERFETCH_FACTOR, MIN_CANDIDATES) / share))
        candidates = self.reader.annoy_rows(q, fetch, math.ceil(self.search_k / share))
        candidates = candidates[base_mask[candidates]]
        if len(candidates) < min(k, base_passing):
            candidates = np.flatnonzero(base_mask)  # the trees missed: exact over the passing rows fills k
        return self.table.exact(q, k, np.concatenate([candidates, delta_rows]))

    def _advance(self, mark: float | None) -> None:
        if mark is not None and (self._mark is None or mark > self._mark):
            self._mark = mark


def _checked(reader: IndexReader) -> None:
    """A file truncated under the memory maps raises IndexCorrupt here instead of SIGBUS later."""
    problem = reader.damage()
    if problem:
        raise IndexCorrupt(problem)
