"""The ``hnsw`` backend: an hnswlib graph per model that takes adds and deletes in place.

One writer at a time (``writing()``: an flock; the Celery worker's sync), any number of readers (web
processes). The writer appends each batch to the log of the published snapshot, then applies it; readers
call ``refresh()`` before a query, which costs one readlink and one stat when nothing changed and
otherwise replays only the new log records. Every SEARCH_HNSW_SNAPSHOT_CHANGES logged rows the writer
publishes a snapshot; readers that replayed up to it adopt it without reading it, others load it.

Filtered search: the passing rows are a NumPy mask over the attribute columns (cached per filter and
change); when a filter excludes some rows and the passing ones hold at most ``exact_floats`` vector
components (rows x dimensions), they are scored exactly,
otherwise hnswlib searches with the mask as its filter callable. k is filled whenever k rows pass: a
filtered graph search that cannot fill k falls back to the exact search of the passing rows.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import hnswlib
import numpy as np

from ..attrs import ALL, Attrs, VectorFilter
from ..integrity import files_open_verified
from ..manifest import IndexCorrupt, Manifest, manifest_read
from ..publish import build_path, current_version
from ..rows import RowTable, RowTableStore, normalised_query
from ..store import normalised_rows
from .files import (
    ALIVE_NAME,
    ATTRS_NAME,
    GRAPH_NAME,
    IDS_NAME,
    SPACE,
    VECTORS_NAME,
    WRITER_LOCK,
    log_path,
    snapshot_write,
)
from .log import ATTRS, DELETE, UPSERT, LogRecord, log_append, log_read, log_size

DEFAULT_EF = 128
# ~12k rows at 256-d, ~2.3k at 1280-d: measured by bench_index.py --backends (docs/benchmarks.md).
DEFAULT_EXACT_FLOATS = 3_000_000
_HEADROOM = 1024


class StoreMissing(FileNotFoundError):
    """No snapshot of this store has been published yet."""


class HnswStore(RowTableStore):
    backend = "hnsw"

    def __init__(
        self, store_dir: Path, *, ef: int = DEFAULT_EF, exact_floats: int = DEFAULT_EXACT_FLOATS
    ) -> None:
        self.store_dir = Path(store_dir)
        self.ef, self.exact_floats = ef, exact_floats
        self.manifest: Manifest | None = None
        self.table: RowTable | None = None
        self._graph: hnswlib.Index | None = None
        self._offset = 0  # bytes of the current snapshot's log applied
        self._mark: float | None = None
        self.logged_rows = 0  # rows changed through the log since the snapshot
        self._lock = threading.RLock()
        self._writing = False
        self.refresh()

    # --- what it is ----------------------------------------------------------------------------

    @property
    def fingerprint(self) -> str:
        return self.manifest.fingerprint

    @property
    def dim(self) -> int:
        return self.manifest.dim

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def stamp(self) -> tuple[str, int]:
        """(snapshot version, log bytes applied): changes whenever the store changes."""
        return self.version, self._offset

    # --- following the writer ------------------------------------------------------------------

    def refresh(self) -> None:
        """Catch up with what the writer published: a new snapshot, then new log records."""
        version = current_version(self.store_dir)
        if version is None:
            raise StoreMissing(f"no snapshot published under {self.store_dir.name}")
        with self._lock:
            if self.manifest is None or version != self.manifest.version:
                self._switch(version)
            if log_size(log_path(self.store_dir, version)) > self._offset:
                records, self._offset = log_read(log_path(self.store_dir, version), self._offset)
                for record in records:
                    self._apply(record)

    def _switch(self, version: str) -> None:
        manifest = manifest_read(build_path(self.store_dir, version))
        adoptable = (
            self.manifest is not None
            and manifest.params.get("parent") == self.manifest.version
            and manifest.params.get("parent_log_bytes") == self._offset
        )
        if not adoptable:
            self._load(manifest)
        self.manifest, self._offset, self.logged_rows = manifest, 0, 0
        self._mark = manifest.params.get("mark", self._mark)

    def _load(self, manifest: Manifest) -> None:
        folder = build_path(self.store_dir, manifest.version)
        files = files_open_verified(folder, manifest)  # sizes and checksums, or IndexCorrupt
        try:
            for fh in files.values():
                fh.seek(0)  # hashed to the end while verified
            ids = np.load(files[IDS_NAME])
            alive = np.load(files[ALIVE_NAME])
            attrs = Attrs.load(files[ATTRS_NAME])
        except (OSError, ValueError, KeyError) as exc:
            raise IndexCorrupt(f"cannot read the stored arrays: {exc}") from exc
        finally:
            for fh in files.values():
                fh.close()
        vectors = np.load(folder / VECTORS_NAME, mmap_mode="r")
        graph = hnswlib.Index(space=SPACE, dim=manifest.dim)
        graph.load_index(str(folder / GRAPH_NAME), max_elements=len(ids) + _HEADROOM)
        if graph.element_count != len(ids) or vectors.shape != (len(ids), manifest.dim):
            raise IndexCorrupt(f"{GRAPH_NAME} holds {graph.element_count} rows, the arrays {len(ids)}")
        self._graph, self.table = graph, RowTable(ids, vectors, attrs, alive)

    def _apply(self, record: LogRecord) -> None:
        if record.op == UPSERT:
            new_rows, killed = self.table.upsert(record.ids, record.vectors, record.attrs)
            self._mark_deleted(killed)
            if len(new_rows):
                needed = len(self.table)
                if needed > self._graph.get_max_elements():
                    self._graph.resize_index(max(needed + _HEADROOM, int(needed * 1.25)))
                self._graph.add_items(self.table.vectors_at(new_rows), new_rows, num_threads=1)
        elif record.op == DELETE:
            self._mark_deleted(self.table.delete(record.ids))
        elif record.op == ATTRS:
            self.table.update_attrs(record.ids, record.attrs)
        self.logged_rows += len(record.ids)
        if record.mark is not None and (self._mark is None or record.mark > self._mark):
            self._mark = record.mark

    def _mark_deleted(self, rows: np.ndarray) -> None:
        for row in rows.tolist():
            self._graph.mark_deleted(row)

    # --- writing (the single writer) -----------------------------------------------------------

    @contextmanager
    def writing(self) -> Iterator[HnswStore]:
        """Holds the store's writer lock (across processes), caught up with the log, torn tail cut."""
        with open(self.store_dir / WRITER_LOCK, "a") as lock_file, self._lock:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                self.refresh()
                path = log_path(self.store_dir, self.version)
                if log_size(path) > self._offset:
                    with open(path, "r+b") as fh:  # a writer was killed mid-record: drop the fragment
                        fh.truncate(self._offset)
                self._writing = True
                yield self
            finally:
                self._writing = False
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def upsert(
        self, ids: np.ndarray, vectors: np.ndarray, attrs: Attrs, *, mark: float | None = None
    ) -> None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        vectors = normalised_rows(vectors, ids) if len(ids) else np.empty((0, self.dim), np.float32)
        if vectors.shape[1] != self.dim:
            raise ValueError(f"vectors have {vectors.shape[1]} dimensions, this store holds {self.dim}")
        self._write(LogRecord(UPSERT, ids, vectors, attrs, mark))

    def update_attrs(self, ids: np.ndarray, attrs: Attrs) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        with self._lock:
            held = self.table.rows_of(ids) >= 0
        if held.any():
            self._write(LogRecord(ATTRS, ids[held], attrs=attrs.take(np.flatnonzero(held))))
        return ids[~held]

    def delete(self, ids: np.ndarray, *, mark: float | None = None) -> None:
        self._write(LogRecord(DELETE, np.asarray(ids, dtype=np.int64).reshape(-1), mark=mark))

    def _write(self, record: LogRecord) -> None:
        if not self._writing:
            raise RuntimeError("hnsw stores are changed only inside writing() (one writer at a time)")
        unchanged_mark = record.mark is None or (self._mark is not None and record.mark <= self._mark + 1e-6)
        if len(record.ids) == 0 and unchanged_mark:
            return
        self._offset = log_append(log_path(self.store_dir, self.version), record)
        self._apply(record)

    def snapshot(self, *, extra: dict | None = None) -> Manifest:
        """Publishes the current state as a new snapshot (inside writing()); readers adopt it."""
        if not self._writing:
            raise RuntimeError("snapshot() needs writing()")
        rows = np.arange(len(self.table))
        params = {
            **{key: self.manifest.params.get(key) for key in ("M", "ef_construction")},
            "mark": self._mark,
            "parent": self.version,
            "parent_log_bytes": self._offset,
        }
        manifest = snapshot_write(
            self.store_dir,
            graph=self._graph,
            ids=self.table.ids,
            vectors=self.table.vectors_at(rows),
            attrs=self.table.attrs,
            alive=self.table.alive,
            fingerprint=self.fingerprint,
            params=params,
            extra=self.manifest.extra if extra is None else extra,
        )
        self.manifest, self._offset, self.logged_rows = manifest, 0, 0
        return manifest

    # --- searching -----------------------------------------------------------------------------

    def search(
        self, vector: np.ndarray, k: int, flt: VectorFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        q = normalised_query(vector, self.dim, f"hnsw store {self.version} of {self.fingerprint}")
        with self._lock:
            mask, passing = self.table.passing(flt or ALL)
            if passing == 0 or k <= 0:
                return np.empty(0, np.int64), np.empty(0, np.float32)
            k = min(k, passing)
            rows, scores = self._search_rows(q, k, mask, passing)
            return self.table.ids[rows], np.clip(scores, 0.0, 1.0)

    def _search_rows(
        self, q: np.ndarray, k: int, mask: np.ndarray, passing: int
    ) -> tuple[np.ndarray, np.ndarray]:
        live = self.table.live_count
        if passing < live and passing * self.dim <= self.exact_floats:
            return self.table.exact(q, k, np.flatnonzero(mask))
        self._graph.set_ef(max(self.ef, k))
        # Deleted rows are skipped by hnswlib itself; a filter is only needed when attributes exclude some.
        allowed = None if passing == live else mask.tobytes().__getitem__
        try:
            labels, distances = self._graph.knn_query(q, k=k, filter=allowed, num_threads=1)
        except RuntimeError:  # fewer than k found in the graph's neighbourhood: score the passing rows
            return self.table.exact(q, k, np.flatnonzero(mask))
        return labels[0].astype(np.int64), (1.0 - distances[0]).astype(np.float32)
