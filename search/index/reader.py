"""Read a published build: the large files memory-mapped (pages shared between processes), verified first.

Opening checks every file against the manifest (sizes, then checksums: see ``integrity``); the ids are
read into memory and only the vectors and the Annoy file stay mapped, and their sizes are checked again
before each use, so a file truncated under a live reader raises IndexCorrupt instead of SIGBUS.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np
from annoy import AnnoyIndex

from .attrs import Attrs
from .build import METRIC
from .integrity import MappedFiles, files_open_verified, same_file
from .manifest import (
    ANNOY_NAME,
    ATTRS_NAME,
    ID_ORDER_NAME,
    IDS_NAME,
    PCA_NAME,
    VECTORS_NAME,
    IndexCorrupt,
    Manifest,
    manifest_read,
)
from .pca import Pca

# Defaults measured by bench/bench_index.py (docs/benchmarks.md); callers pass settings.SEARCH_*.
DEFAULT_SEARCH_K = 80_000
DEFAULT_EXACT_THRESHOLD = 50_000
# Candidates taken from Annoy per result before the exact re-rank.
OVERFETCH_FACTOR = 4
MIN_CANDIDATES = 100

_EMPTY = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))


class IndexReader:
    """One build opened read-only. Safe to share between threads; never mutated after opening."""

    def __init__(self, build_dir: Path, *, verify_checksums: bool = True) -> None:
        """Raises IndexCorrupt when a file differs from what the manifest records (message without
        paths: it names the file and what differs); other OSErrors pass through."""
        self.path = Path(build_dir)
        self.manifest: Manifest = manifest_read(self.path)
        self._check_listed()
        files = files_open_verified(self.path, self.manifest, checksums=verify_checksums)
        mapped = [VECTORS_NAME] + ([ANNOY_NAME] if self.manifest.count else [])
        try:
            self._open(files, mapped)
        except BaseException:
            for fh in files.values():
                fh.close()
            raise
        for name in set(files) - set(mapped):
            files[name].close()
        self._mapped = MappedFiles({name: files[name] for name in mapped}, self.manifest.files)

    def _open(self, files: dict[str, BinaryIO], mapped: list[str]) -> None:
        try:
            # Ids are read from the verified open files (16 bytes an item): only two files stay mapped.
            self._ids = np.load(_rewound(files[IDS_NAME]))
            order = np.load(_rewound(files[ID_ORDER_NAME]))
            self._vectors = np.load(self.path / VECTORS_NAME, mmap_mode="r")
            self._check_shapes(order)
            self._sorted_ids = self._ids[order]
            self._sorted_rows = order
            self._pca = Pca.load(_rewound(files[PCA_NAME])) if self.manifest.pca else None
            # Builds made before attributes were stored have none: filters then run in the database only.
            self.attrs = Attrs.load(_rewound(files[ATTRS_NAME])) if ATTRS_NAME in files else None
            if self.attrs is not None and len(self.attrs) != self.manifest.count:
                raise IndexCorrupt(
                    f"{ATTRS_NAME} has {len(self.attrs)} rows, the manifest says {self.manifest.count}"
                )
        except IndexCorrupt:
            raise
        except (OSError, ValueError, IndexError, KeyError, zipfile.BadZipFile) as exc:
            # Only reachable without checksums (older manifests): damage that kept the sizes.
            raise IndexCorrupt(f"cannot read the stored arrays: {exc}") from exc
        self._annoy = self._load_annoy() if self.manifest.count else None
        for name in mapped:
            if not same_file(files[name], self.path / name):
                raise IndexCorrupt(f"{name} was replaced while the build was being opened")

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def fingerprint(self) -> str:
        return self.manifest.fingerprint

    @property
    def dim(self) -> int:
        return self.manifest.dim

    def __len__(self) -> int:
        return self.manifest.count

    @property
    def ids(self) -> np.ndarray:
        """Image id of each row."""
        return self._ids

    @property
    def vectors(self) -> np.ndarray:
        """The stored vectors, memory-mapped (check ``damage()`` before reading them)."""
        return self._vectors

    @property
    def has_annoy(self) -> bool:
        return self._annoy is not None

    def annoy_rows(self, q: np.ndarray, fetch: int, search_k: int) -> np.ndarray:
        """Up to ``fetch`` candidate rows for the normalised query from the Annoy trees (approximate)."""
        self._check_intact()
        projected = q if self._pca is None else self._pca.project(q)
        rows = self._annoy.get_nns_by_vector(projected, fetch, search_k=max(search_k, fetch))
        return np.asarray(rows, dtype=np.int64)

    def damage(self) -> str:
        """Why this reader can no longer be used safely ("" while it can): a memory-mapped file
        changed size since it was verified. Two fstat calls, cheap enough for every query."""
        return self._mapped.damage()

    def _check_intact(self) -> None:
        problem = self.damage()
        if problem:
            raise IndexCorrupt(problem)

    def search(
        self,
        query: np.ndarray,
        n: int,
        *,
        search_k: int = DEFAULT_SEARCH_K,
        exact_threshold: int = DEFAULT_EXACT_THRESHOLD,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` nearest image ids and their cosine similarity (clipped to [0, 1]), best first.

        Catalogs of at most ``exact_threshold`` items are searched exactly; larger ones take
        candidates from Annoy (inspecting ``search_k`` nodes) and re-rank them exactly.
        """
        q = self._query(query)
        if n <= 0 or len(self) == 0:
            return _EMPTY
        self._check_intact()  # before touching the maps: a truncated file would SIGBUS
        if len(self) <= exact_threshold or self._annoy is None:
            rows = None
            scores = self._vectors @ q
        else:
            rows = self._candidates(q, n, search_k)
            scores = self._vectors[rows] @ q
        return self._top(rows, scores, n)

    def vectors_for(self, ids: np.ndarray | list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Stored vectors of these image ids as ``(found_ids, vectors)``; ids not in the build are skipped."""
        wanted = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(self) == 0:
            return wanted[:0], np.empty((0, self.dim), dtype=np.float32)
        self._check_intact()
        pos = np.searchsorted(self._sorted_ids, wanted)
        pos_clipped = np.minimum(pos, len(self._sorted_ids) - 1)
        found = (pos < len(self._sorted_ids)) & (self._sorted_ids[pos_clipped] == wanted)
        rows = self._sorted_rows[pos_clipped[found]]
        return wanted[found], np.asarray(self._vectors[rows], dtype=np.float32).reshape(-1, self.dim)

    def _query(self, query: np.ndarray) -> np.ndarray:
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dim:
            raise ValueError(
                f"query vector has {q.shape[0]} dimensions but index {self.version} holds "
                f"{self.dim}-dimensional vectors (built with model {self.fingerprint!r})"
            )
        norm = float(np.linalg.norm(q))
        if not np.isfinite(norm) or norm == 0:
            raise ValueError("query vector must be finite and non-zero")
        return q / norm

    def _candidates(self, q: np.ndarray, n: int, search_k: int) -> np.ndarray:
        fetch = max(n * OVERFETCH_FACTOR, MIN_CANDIDATES)
        projected = q if self._pca is None else self._pca.project(q)
        # search_k below the number of wanted candidates would return fewer than asked for.
        rows = self._annoy.get_nns_by_vector(projected, fetch, search_k=max(search_k, fetch))
        # Sorted rows read the memory-mapped vectors in file order.
        return np.sort(np.asarray(rows, dtype=np.int64))

    def _top(self, rows: np.ndarray | None, scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        n = min(n, len(scores))
        best = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
        best = best[np.argsort(-scores[best], kind="stable")]
        picked = best if rows is None else rows[best]
        ids = np.asarray(self._ids[picked], dtype=np.int64)
        return ids, np.clip(scores[best], 0.0, 1.0).astype(np.float32)

    def _check_shapes(self, order: np.ndarray) -> None:
        m = self.manifest
        expected = {"vectors": (m.count, m.dim), "ids": (m.count,), "id order": (m.count,)}
        actual = {"vectors": self._vectors.shape, "ids": self._ids.shape, "id order": order.shape}
        for name, shape in expected.items():
            if actual[name] != shape:
                raise IndexCorrupt(f"{name} has shape {actual[name]}, the manifest says {shape}")

    def _load_annoy(self) -> AnnoyIndex:
        index = AnnoyIndex(self.manifest.index_dim, METRIC)
        try:
            index.load(str(self.path / ANNOY_NAME))
        except OSError as exc:
            raise IndexCorrupt(f"cannot load {ANNOY_NAME}: {exc}") from exc
        if index.get_n_items() != self.manifest.count:
            raise IndexCorrupt(
                f"{ANNOY_NAME} holds {index.get_n_items()} items, the manifest says {self.manifest.count}"
            )
        return index

    def _check_listed(self) -> None:
        m = self.manifest
        needed = {VECTORS_NAME, IDS_NAME, ID_ORDER_NAME} | ({ANNOY_NAME} if m.count else set())
        needed |= {PCA_NAME} if m.pca else set()
        missing = sorted(needed - set(m.files))
        if missing:
            raise IndexCorrupt(f"the manifest does not list {', '.join(missing)}")


def _rewound(fh: BinaryIO) -> BinaryIO:
    fh.seek(0)
    return fh
