"""PCA for the Annoy stage: fewer dimensions make approximate search faster at equal recall.

Only the candidate search uses projected vectors; results are re-ranked against the full vectors,
so PCA costs recall of candidates, never the accuracy of the returned scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

FIT_SAMPLE_ROWS = 50_000
_CHUNK_ROWS = 8192
PCA_MODES = ("auto", "on", "off")


def pca_dim_for(n: int, *, mode: str, dim: int, min_vectors: int) -> int:
    """The PCA dimension a build of ``n`` vectors uses (0: none) under ``mode``.

    "auto" projects only catalogs of at least ``min_vectors``: below that the fit costs build time and
    the query path scores exactly anyway (docs/benchmarks.md, "Annoy with and without PCA"). "on" always
    projects, "off" never; ``dim`` 0 means none in every mode.
    """
    if mode not in PCA_MODES:
        raise ValueError(f"PCA mode must be one of {', '.join(PCA_MODES)}, not {mode!r}")
    if mode == "off" or (mode == "auto" and n < min_vectors):
        return 0
    return max(dim, 0)


@dataclass(frozen=True)
class Pca:
    mean: np.ndarray  # (d,) float32
    components: np.ndarray  # (k, d) float32, rows are principal axes
    explained_variance_ratio: float

    @property
    def dim(self) -> int:
        return int(self.components.shape[0])

    def project(self, vectors: np.ndarray) -> np.ndarray:
        """Project rows (or one vector) and re-normalise, since Annoy's angular metric compares directions."""
        projected = (np.asarray(vectors, dtype=np.float32) - self.mean) @ self.components.T
        norms = np.linalg.norm(projected, axis=-1, keepdims=True)
        return (projected / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)

    def save(self, path: Path) -> None:
        np.savez(
            path, mean=self.mean, components=self.components, evr=np.float64(self.explained_variance_ratio)
        )

    @classmethod
    def load(cls, path: Path | BinaryIO) -> Pca:
        with np.load(path) as data:
            return cls(data["mean"], data["components"], float(data["evr"]))


def pca_fit(vectors: np.ndarray, dim: int, *, seed: int = 0) -> Pca:
    """Fit on a sample of at most FIT_SAMPLE_ROWS rows.

    Uses the eigen-decomposition of the covariance matrix (SVD-equivalent for a symmetric matrix):
    with n >> d one (d x d) product is much cheaper than an SVD of the (n x d) sample.
    """
    sample = _sample_rows(vectors, FIT_SAMPLE_ROWS, seed)
    mean = sample.mean(axis=0, dtype=np.float64)
    cov = np.zeros((sample.shape[1], sample.shape[1]), dtype=np.float64)
    for start in range(0, len(sample), _CHUNK_ROWS):
        # float64 chunks: float32 accumulation over 50k rows loses the small components.
        chunk = sample[start : start + _CHUNK_ROWS].astype(np.float64) - mean
        cov += chunk.T @ chunk
    eigvals, eigvecs = np.linalg.eigh(cov)
    order = np.argsort(eigvals)[::-1][:dim]
    total = float(eigvals.sum())
    ratio = float(eigvals[order].sum() / total) if total > 0 else 1.0
    return Pca(mean.astype(np.float32), eigvecs[:, order].T.astype(np.float32).copy(), ratio)


def _sample_rows(vectors: np.ndarray, limit: int, seed: int) -> np.ndarray:
    if len(vectors) <= limit:
        return np.asarray(vectors)
    rows = np.sort(np.random.default_rng(seed).choice(len(vectors), size=limit, replace=False))
    return np.asarray(vectors[rows])
