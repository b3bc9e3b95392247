"""Build an index into a new directory, then publish it atomically.

Nothing is published before every file and the manifest (written last, with each file's size and
checksum) are on disk, so an exception or a killed process leaves the previous build serving;
leftovers are ``builds/*.tmp-*`` directories that ``index_cleanup`` removes. A complete build is made
read-only before it is published.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from annoy import AnnoyIndex

from .attrs import Attrs
from .integrity import build_file_facts
from .manifest import (
    ANNOY_NAME,
    ATTRS_NAME,
    ID_ORDER_NAME,
    IDS_NAME,
    PCA_NAME,
    VECTORS_NAME,
    Manifest,
    fsync_path,
    manifest_write,
)
from .pca import Pca, pca_fit
from .publish import (
    READ_ONLY_DIR,
    TMP_MARKER,
    build_dir_remove,
    build_files_seal,
    build_path,
    builds_dir,
    index_publish,
)

METRIC = "angular"
# Rows whose norm is off by more than this are re-normalised (embedders already normalise; this
# only guards against callers that do not).
_NORM_TOLERANCE = 1e-3

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): stages are "vectors", "pca", "annoy-add", "annoy-build", "publish"."""


def new_version() -> str:
    """Sortable by build time (UTC, microseconds) with a random suffix against same-instant builds."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


def index_build(
    vectors: np.ndarray,
    ids: np.ndarray,
    *,
    root: Path,
    fingerprint: str,
    n_trees: int,
    pca_dim: int = 0,
    extra: dict[str, Any] | None = None,
    progress: Progress | None = None,
    publish: bool = True,
    attrs: Attrs | None = None,
) -> Manifest:
    """Build an index of ``vectors`` (n, d) whose row i is image ``ids[i]`` (with ``attrs`` row i, for
    filters inside the search) and publish it.

    Raises ValueError for inconsistent input (shapes, duplicate ids, zero or non-finite vectors)
    before touching the disk. An empty catalog (n = 0) is a valid build that finds nothing.
    """
    started = time.monotonic()
    vectors, ids = _validated(vectors, ids, n_trees)
    if attrs is not None and len(attrs) != len(ids):
        raise ValueError(f"attrs must have one row per vector: {len(attrs)} for {len(ids)} vectors")
    report = progress or _no_progress
    version = new_version()
    final_dir = build_path(root, version)
    tmp_dir = builds_dir(root) / f"{version}{TMP_MARKER}{os.getpid()}"
    tmp_dir.mkdir(parents=True)
    try:
        if attrs is not None:
            attrs.save(tmp_dir / ATTRS_NAME)
        files_params = _write_build(tmp_dir, vectors, ids, n_trees, pca_dim, report)
        manifest = _manifest(version, fingerprint, vectors, n_trees, extra, started, tmp_dir, *files_params)
        manifest_write(tmp_dir, manifest)
        build_files_seal(tmp_dir)
        os.rename(tmp_dir, final_dir)
        # After the rename: some systems refuse to rename a directory that is not writable.
        final_dir.chmod(READ_ONLY_DIR)
        fsync_path(final_dir.parent)
    except BaseException:
        build_dir_remove(tmp_dir)
        raise
    if publish:
        report("publish", 0, 1)
        index_publish(root, version)
        report("publish", 1, 1)
    return manifest


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


def _validated(vectors: np.ndarray, ids: np.ndarray, n_trees: int) -> tuple[np.ndarray, np.ndarray]:
    vectors = np.asarray(vectors, dtype=np.float32)
    ids = np.asarray(ids)
    if vectors.ndim != 2:
        raise ValueError(f"vectors must be a 2-d array (n, dim), got shape {vectors.shape}")
    if ids.shape != (len(vectors),):
        raise ValueError(f"ids must have one entry per vector: {ids.shape} ids for {len(vectors)} vectors")
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids must be integers, got {ids.dtype}")
    if n_trees < 1:
        raise ValueError(f"n_trees must be at least 1, got {n_trees}")
    ids = ids.astype(np.int64)
    if len(np.unique(ids)) != len(ids):
        raise ValueError("ids must be unique: the same image id appears more than once")
    return _normalised(vectors, ids), ids


def _normalised(vectors: np.ndarray, ids: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1)
    bad = ~np.isfinite(norms) | (norms == 0)
    if bad.any():
        raise ValueError(f"vectors must be finite and non-zero: image id {int(ids[np.argmax(bad)])} is not")
    if np.all(np.abs(norms - 1) <= _NORM_TOLERANCE):
        return vectors
    return vectors / norms[:, None]


def _write_build(
    build_dir: Path, vectors: np.ndarray, ids: np.ndarray, n_trees: int, pca_dim: int, report: Progress
) -> tuple[Pca | None, dict[str, Any]]:
    report("vectors", 0, 1)
    np.save(build_dir / VECTORS_NAME, vectors)
    np.save(build_dir / IDS_NAME, ids)
    # Sorted order of ids, so lookups by image id are a binary search on the memory-mapped arrays.
    np.save(build_dir / ID_ORDER_NAME, np.argsort(ids, kind="stable").astype(np.int64))
    report("vectors", 1, 1)
    pca, params = _pca_stage(build_dir, vectors, pca_dim, report)
    if len(vectors):
        _annoy_stage(build_dir, vectors if pca is None else pca.project(vectors), n_trees, report)
    for path in build_dir.iterdir():
        fsync_path(path)
    return pca, params


def _pca_stage(
    build_dir: Path, vectors: np.ndarray, pca_dim: int, report: Progress
) -> tuple[Pca | None, dict[str, Any]]:
    n, dim = vectors.shape
    params: dict[str, Any] = {"pca_dim_requested": pca_dim}
    if pca_dim <= 0 or pca_dim >= dim:
        return None, params
    if n <= pca_dim:
        # Fewer rows than components cannot be fitted meaningfully; such a catalog is searched exactly anyway.
        params["pca_skipped"] = f"{n} vectors are not more than pca_dim={pca_dim}"
        return None, params
    report("pca", 0, 1)
    pca = pca_fit(vectors, pca_dim)
    pca.save(build_dir / PCA_NAME)
    params["pca_explained_variance"] = round(pca.explained_variance_ratio, 4)
    report("pca", 1, 1)
    return pca, params


def _annoy_stage(build_dir: Path, vectors: np.ndarray, n_trees: int, report: Progress) -> None:
    n, dim = vectors.shape
    index = AnnoyIndex(dim, METRIC)
    step = max(1, n // 100)
    for i in range(n):
        index.add_item(i, vectors[i].tolist())  # a list converts about 2x faster than an ndarray row
        if i % step == 0:
            report("annoy-add", i, n)
    report("annoy-add", n, n)
    report("annoy-build", 0, n_trees)
    index.build(n_trees, n_jobs=-1)
    index.save(str(build_dir / ANNOY_NAME))
    index.unload()
    report("annoy-build", n_trees, n_trees)


def _manifest(
    version: str,
    fingerprint: str,
    vectors: np.ndarray,
    n_trees: int,
    extra: dict[str, Any] | None,
    started: float,
    build_dir: Path,
    pca: Pca | None,
    params: dict[str, Any],
) -> Manifest:
    names = [p.name for p in sorted(build_dir.iterdir()) if not p.name.startswith(".")]
    files, checksums = build_file_facts(build_dir, names)
    return Manifest(
        version=version,
        fingerprint=fingerprint,
        count=int(len(vectors)),
        dim=int(vectors.shape[1]),
        index_dim=pca.dim if pca else int(vectors.shape[1]),
        pca=pca is not None,
        n_trees=n_trees,
        metric=METRIC,
        built_at=datetime.now(UTC).isoformat(),
        build_seconds=round(time.monotonic() - started, 3),
        params={"n_trees": n_trees, **params},
        extra=dict(extra or {}),
        files=files,
        checksums=checksums,
    )
