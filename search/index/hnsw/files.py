"""Snapshots of an hnsw store on disk: written into a new versioned directory, published atomically.

Layout of one store (one model)::

    builds/<version>/   graph.hnsw, ids.npy, vectors.npy, alive.npy, attrs.npz, manifest.json (last)
    current -> builds/<version>          swapped with os.replace (search.index.publish)
    logs/<version>.log                   changes since that snapshot (search.index.hnsw.log)
    writer.lock                          flock of the single writer

Rows are graph labels: row i of ids/vectors/attrs is label i; deleted rows stay (marked deleted in the
graph, ``alive`` False) until a full rebuild compacts them away. The manifest's ``params`` record the
snapshot's parent version and how much of the parent's log it contains, so a reader that has replayed
exactly that much adopts the snapshot without loading it.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hnswlib
import numpy as np

from ..attrs import Attrs
from ..build import new_version
from ..integrity import build_file_facts
from ..manifest import Manifest, fsync_path, manifest_write
from ..publish import (
    READ_ONLY_DIR,
    TMP_MARKER,
    build_dir_remove,
    build_files_seal,
    build_path,
    builds_dir,
    index_publish,
)

GRAPH_NAME = "graph.hnsw"
IDS_NAME = "ids.npy"
VECTORS_NAME = "vectors.npy"
ALIVE_NAME = "alive.npy"
ATTRS_NAME = "attrs.npz"
SPACE = "ip"  # inner product of unit vectors: similarity = 1 - distance
LOGS_DIR = "logs"
WRITER_LOCK = "writer.lock"


def log_path(store_dir: Path, version: str) -> Path:
    return Path(store_dir) / LOGS_DIR / f"{version}.log"


def new_graph(dim: int, capacity: int, *, m: int, ef_construction: int) -> hnswlib.Index:
    graph = hnswlib.Index(space=SPACE, dim=dim)
    graph.init_index(max_elements=max(capacity, 1), M=m, ef_construction=ef_construction, random_seed=100)
    return graph


def snapshot_write(
    store_dir: Path,
    *,
    graph: hnswlib.Index,
    ids: np.ndarray,
    vectors: np.ndarray,
    attrs: Attrs,
    alive: np.ndarray,
    fingerprint: str,
    params: dict[str, Any],
    extra: dict[str, Any] | None = None,
    started: float | None = None,
    publish: bool = True,
) -> Manifest:
    """Writes a complete snapshot into a new build directory (manifest last, files read-only) and
    publishes it unless ``publish`` is False. Nothing is published on any error."""
    started = time.monotonic() if started is None else started
    version = new_version()
    tmp_dir = builds_dir(store_dir) / f"{version}{TMP_MARKER}{os.getpid()}"
    tmp_dir.mkdir(parents=True)
    (Path(store_dir) / LOGS_DIR).mkdir(exist_ok=True)
    try:
        np.save(tmp_dir / IDS_NAME, np.asarray(ids, dtype=np.int64))
        np.save(tmp_dir / VECTORS_NAME, np.asarray(vectors, dtype=np.float32))
        np.save(tmp_dir / ALIVE_NAME, np.asarray(alive, dtype=bool))
        attrs.save(tmp_dir / ATTRS_NAME)
        graph.save_index(str(tmp_dir / GRAPH_NAME))
        for path in tmp_dir.iterdir():
            fsync_path(path)
        names = sorted(p.name for p in tmp_dir.iterdir() if not p.name.startswith("."))
        files, checksums = build_file_facts(tmp_dir, names)
        manifest = Manifest(
            version=version,
            fingerprint=fingerprint,
            count=int(np.count_nonzero(alive)),
            dim=int(graph.dim),
            index_dim=int(graph.dim),
            pca=False,
            n_trees=0,
            metric=SPACE,
            built_at=datetime.now(UTC).isoformat(),
            build_seconds=round(time.monotonic() - started, 3),
            params={"backend": "hnsw", "rows": len(ids), **params},
            extra=dict(extra or {}),
            files=files,
            checksums=checksums,
        )
        manifest_write(tmp_dir, manifest)
        build_files_seal(tmp_dir)
        final_dir = build_path(store_dir, version)
        os.rename(tmp_dir, final_dir)
        final_dir.chmod(READ_ONLY_DIR)
        fsync_path(final_dir.parent)
    except BaseException:
        build_dir_remove(tmp_dir)
        raise
    if publish:
        index_publish(store_dir, version)
    return manifest


def graph_build(
    store_dir: Path,
    *,
    ids: np.ndarray,
    vectors: np.ndarray,
    attrs: Attrs,
    fingerprint: str,
    m: int,
    ef_construction: int,
    mark: float | None,
    extra: dict[str, Any] | None = None,
    publish: bool = True,
) -> Manifest:
    """A new graph of these (normalised) vectors from scratch: the first snapshot of a store, or a
    rebuild that compacts away deleted rows."""
    started = time.monotonic()
    n, dim = vectors.shape
    graph = new_graph(dim, n, m=m, ef_construction=ef_construction)
    if n:
        graph.add_items(vectors, np.arange(n), num_threads=-1)
    params = {"M": m, "ef_construction": ef_construction, "mark": mark, "parent": None, "parent_log_bytes": 0}
    return snapshot_write(
        store_dir,
        graph=graph,
        ids=ids,
        vectors=vectors,
        attrs=attrs,
        alive=np.ones(n, dtype=bool),
        fingerprint=fingerprint,
        params=params,
        extra=extra,
        started=started,
        publish=publish,
    )


def links_swap(link: Path, target: str) -> None:
    """Point the symlink ``link`` at ``target`` (relative) atomically: readers see the old or the new."""
    link = Path(link)
    tmp = link.with_name(f".{link.name}{TMP_MARKER}{os.getpid()}-{time.monotonic_ns()}")
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(link.parent)
