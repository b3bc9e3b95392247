"""The rows a store holds: an immutable base (a published build or snapshot, vectors memory-mapped) and
an in-memory delta appended since, with per-row attributes and liveness.

Row numbers are stable for the life of the table: base rows first, then delta rows in the order they
were appended (the hnsw backend uses them as graph labels). Updating a vector appends a new row and
kills the old one; updating only attributes changes them in place. Lookups by id and filter masks are
NumPy operations; the masks are cached per (filter, generation), so repeated filters cost nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from .attrs import Attrs, VectorFilter

_MASK_CACHE = 8


class _Column:
    """A growable 1-d NumPy array (amortised O(1) appends)."""

    def __init__(self, initial: np.ndarray) -> None:
        self._data = np.array(initial, copy=True)
        self.size = len(initial)

    @property
    def view(self) -> np.ndarray:
        return self._data[: self.size]

    def extend(self, values: np.ndarray) -> None:
        needed = self.size + len(values)
        if needed > len(self._data):
            grown = np.empty((max(needed, 2 * len(self._data), 64),) + self._data.shape[1:], self._data.dtype)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : needed] = values
        self.size = needed


class RowTable:
    """Base rows (ids, vectors, attributes) plus appended rows. Not thread-safe: stores lock around it."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray, attrs: Attrs, alive: np.ndarray | None = None):
        self.dim = int(vectors.shape[1])
        self.base_count = len(ids)
        self._base_vectors = vectors  # may be a read-only memory map
        self._delta_vectors = _Column(np.empty((0, self.dim), dtype=np.float32))
        self._ids = _Column(np.asarray(ids, dtype=np.int64))
        self._product = _Column(attrs.product)
        self._category = _Column(attrs.category)
        self._price = _Column(attrs.price_cents)
        self._active = _Column(attrs.active)
        self._alive = _Column(np.ones(len(ids), dtype=bool) if alive is None else alive)
        order = np.argsort(self._ids.view, kind="stable")
        self._base_sorted_ids, self._base_sorted_rows = self._ids.view[order], order
        self._delta_rows: dict[int, int] = {}  # id -> its newest delta row
        self._live = int(self._alive.view.sum())
        self.generation = 0
        self._masks: OrderedDict[tuple, tuple[np.ndarray, int]] = OrderedDict()
        self._mask_lock = threading.Lock()

    # --- reading -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._ids.size

    @property
    def live_count(self) -> int:
        return self._live

    @property
    def ids(self) -> np.ndarray:
        return self._ids.view

    @property
    def alive(self) -> np.ndarray:
        return self._alive.view

    @property
    def attrs(self) -> Attrs:
        return Attrs(self._product.view, self._category.view, self._price.view, self._active.view)

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """The live row of each id, -1 where the table holds no live vector for it."""
        wanted = np.asarray(ids, dtype=np.int64).reshape(-1)
        rows = np.full(len(wanted), -1, dtype=np.int64)
        if self.base_count:
            pos = np.minimum(np.searchsorted(self._base_sorted_ids, wanted), self.base_count - 1)
            hit = self._base_sorted_ids[pos] == wanted
            rows[hit] = self._base_sorted_rows[pos[hit]]
        if self._delta_rows:
            for i, image_id in enumerate(wanted.tolist()):
                row = self._delta_rows.get(image_id)
                if row is not None:
                    rows[i] = row
        found = rows >= 0
        rows[found] = np.where(self._alive.view[rows[found]], rows[found], -1)
        return rows

    def vectors_at(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        base = rows < self.base_count
        if base.any():
            # Sorted reads walk a memory map in file order.
            order = np.argsort(rows[base])
            picked = np.asarray(self._base_vectors[rows[base][order]], dtype=np.float32)
            out[np.flatnonzero(base)[order]] = picked
        if (~base).any():
            out[~base] = self._delta_vectors.view[rows[~base] - self.base_count]
        return out

    def passing(self, flt: VectorFilter) -> tuple[np.ndarray, int]:
        """(mask over every row, number passing): live rows that satisfy the filter."""
        key = (flt, self.generation)
        with self._mask_lock:
            cached = self._masks.get(key)
            if cached is not None:
                self._masks.move_to_end(key)
                return cached
        mask = flt.mask(self.attrs) & self._alive.view
        result = (mask, int(mask.sum()))
        with self._mask_lock:
            self._masks[key] = result
            while len(self._masks) > _MASK_CACHE:
                self._masks.popitem(last=False)
        return result

    def exact(self, q: np.ndarray, k: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The k best of ``rows`` for the normalised query: (rows, cosine similarity), best first."""
        if len(rows) == 0 or k <= 0:
            return rows[:0], np.empty(0, dtype=np.float32)
        return top_k(rows, self._scores(q, np.asarray(rows, dtype=np.int64)), k)

    def _scores(self, q: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Similarity of each row. When a part (base or delta) is mostly wanted, scoring all of it in place
        is cheaper than gathering the rows first (a copy of every wanted vector)."""
        scores = np.empty(len(rows), dtype=np.float32)
        in_base = rows < self.base_count
        for part, matrix, offset in (
            (in_base, self._base_vectors, 0),
            (~in_base, self._delta_vectors.view, self.base_count),
        ):
            wanted = rows[part] - offset
            if len(wanted) == 0:
                continue
            if len(wanted) * 3 >= len(matrix):
                scores[part] = (matrix @ q)[wanted]
            else:
                scores[part] = self.vectors_at(wanted + offset) @ q
        return scores

    # --- changing ------------------------------------------------------------------------------

    def upsert(self, ids: np.ndarray, vectors: np.ndarray, attrs: Attrs) -> tuple[np.ndarray, np.ndarray]:
        """Returns (appended rows, killed rows). An id whose live vector is unchanged keeps its row
        and only takes the new attributes."""
        ids, vectors, attrs = _last_of_each(np.asarray(ids, dtype=np.int64), vectors, attrs)
        current = self.rows_of(ids)
        held = current >= 0
        same = np.zeros(len(ids), dtype=bool)
        if held.any():
            same[held] = np.all(self.vectors_at(current[held]) == vectors[held], axis=1)
        self._set_attrs(current[same], attrs.take(np.flatnonzero(same)))
        killed = current[held & ~same]
        self._alive.view[killed] = False
        new = np.flatnonzero(~same)
        start = len(self)
        self._append(ids[new], vectors[new], attrs.take(new))
        self._live += len(new) - len(killed)
        self.generation += 1
        return np.arange(start, len(self), dtype=np.int64), killed

    def update_attrs(self, ids: np.ndarray, attrs: Attrs) -> np.ndarray:
        """New attributes for the live rows of these ids; returns the ids without a live row."""
        rows = self.rows_of(ids)
        held = rows >= 0
        self._set_attrs(rows[held], attrs.take(np.flatnonzero(held)))
        self.generation += 1
        return np.asarray(ids, dtype=np.int64)[~held]

    def delete(self, ids: np.ndarray) -> np.ndarray:
        """Kills the live rows of these ids; returns them."""
        rows = self.rows_of(ids)
        rows = np.unique(rows[rows >= 0])
        self._alive.view[rows] = False
        self._live -= len(rows)
        self.generation += 1
        return rows

    def _set_attrs(self, rows: np.ndarray, attrs: Attrs) -> None:
        self._product.view[rows] = attrs.product
        self._category.view[rows] = attrs.category
        self._price.view[rows] = attrs.price_cents
        self._active.view[rows] = attrs.active

    def _append(self, ids: np.ndarray, vectors: np.ndarray, attrs: Attrs) -> None:
        start = len(self)
        self._ids.extend(ids)
        self._delta_vectors.extend(np.asarray(vectors, dtype=np.float32))
        self._product.extend(attrs.product)
        self._category.extend(attrs.category)
        self._price.extend(attrs.price_cents)
        self._active.extend(attrs.active)
        self._alive.extend(np.ones(len(ids), dtype=bool))
        for offset, image_id in enumerate(ids.tolist()):
            self._delta_rows[image_id] = start + offset


class RowTableStore:
    """What a store whose rows are a RowTable (``table``, guarded by ``_lock``) answers from the table
    alone, whatever engine searches it (AnnoyStore, HnswStore)."""

    table: RowTable
    _lock: threading.RLock
    _mark: float | None

    @property
    def sync_mark(self) -> float | None:
        return self._mark

    def count(self) -> int:
        """Live vectors."""
        with self._lock:
            return self.table.live_count

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """The given ids the store holds a live vector for."""
        wanted = np.asarray(ids, dtype=np.int64).reshape(-1)
        with self._lock:
            return wanted[self.table.rows_of(wanted) >= 0]


def _last_of_each(ids: np.ndarray, vectors: np.ndarray, attrs: Attrs) -> tuple[np.ndarray, np.ndarray, Attrs]:
    """One entry per id, the last given (a batch may carry an id twice: the later value is newer)."""
    _, first_in_reversed = np.unique(ids[::-1], return_index=True)
    if len(first_in_reversed) == len(ids):
        return ids, vectors, attrs
    keep = np.sort(len(ids) - 1 - first_in_reversed)
    return ids[keep], vectors[keep], attrs.take(keep)


def top_k(keys: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k highest scores with their keys, best first (ties keep input order)."""
    k = min(k, len(scores))
    if k <= 0:
        return keys[:0], scores[:0].astype(np.float32)
    best = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    best = best[np.argsort(-scores[best], kind="stable")]
    return keys[best], scores[best].astype(np.float32)


def normalised_query(query: np.ndarray, dim: int, what: str) -> np.ndarray:
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    if q.shape[0] != dim:
        raise ValueError(
            f"query vector has {q.shape[0]} dimensions but {what} holds {dim}-dimensional vectors"
        )
    norm = float(np.linalg.norm(q))
    if not np.isfinite(norm) or norm == 0:
        raise ValueError("query vector must be finite and non-zero")
    return q / norm
