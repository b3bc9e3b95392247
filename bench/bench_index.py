"""Benchmark search.index: build time, memory, query latency and recall@10 against exact search.

    .venv/bin/python bench/bench_index.py [--sizes 10000,100000,1000000] [--dim 2048]
    .venv/bin/python bench/bench_index.py --backends [--backend-sizes 200000x256,1000000x256,200000x1280]
    .venv/bin/python bench/bench_index.py --fresh 10000
    .venv/bin/python bench/bench_index.py --pca-sizes 20000,100000,200000 --dim 1280

``--backends``: the annoy and hnsw vector stores side by side with raw hnswlib, unfiltered and filtered
(bench/index_backends.py), then the milvus store on Milvus Lite (bench/index_milvus.py).
``--fresh N``: query cost with N vectors embedded since the last build, read
from the database per query (before) and held in memory (after) (bench/index_fresh.py). ``--pca-sizes``:
the annoy store with and without PCA, interleaved (bench/index_pca.py).

Data: synthetic clustered unit vectors (see ``clustered_unit_vectors``), generated in chunks. Sizes
at or above ``--large-size`` (default 1M) use ``--large-dim`` (default 256, what PCA would give)
because 1M x 2048 float32 alone is 8 GB. Prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.index import IndexReader, index_build  # noqa: E402
from search.index.publish import build_dir_remove, build_path  # noqa: E402

K = 10
_CHUNK = 20_000


def clustered_unit_vectors(n: int, dim: int, *, per_cluster: int, seed: int) -> np.ndarray:
    """Points around n/per_cluster centres, with variance decaying as 1/(j+1) along axis j.

    The decaying spectrum imitates CNN embeddings (most variance in a few hundred directions), so
    PCA is meaningful; clusters imitate groups of similar products.
    """
    rng = np.random.default_rng(seed)
    scale = (1.0 / np.sqrt(np.arange(1, dim + 1))).astype(np.float32)
    n_clusters = max(1, n // per_cluster)
    centres = rng.standard_normal((n_clusters, dim), dtype=np.float32) * scale
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, _CHUNK):
        rows = min(_CHUNK, n - start)
        chunk = centres[rng.integers(0, n_clusters, rows)]
        chunk += 0.6 * rng.standard_normal((rows, dim), dtype=np.float32) * scale
        out[start : start + rows] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return out


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Row numbers of the true top-k per query, computed in chunks of the catalog."""
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(vectors), 100_000):
        scores = queries @ vectors[start : start + 100_000].T
        top = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        all_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, axis=1)], axis=1)
        all_rows = np.concatenate([best_rows, top + start], axis=1)
        order = np.argsort(-all_scores, axis=1)[:, :k]
        best_scores = np.take_along_axis(all_scores, order, axis=1)
        best_rows = np.take_along_axis(all_rows, order, axis=1)
    return best_rows


def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS since the last reset) in MB, from /proc (Linux)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def reset_peak_rss() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)
    except OSError:
        pass


@dataclass
class Row:
    n: int
    dim: int
    index_dim: int
    trees: int
    build_s: float
    build_peak_mb: float
    annoy_mb: float
    vectors_mb: float
    mode: str
    search_k: int | str
    p50_ms: float
    p99_ms: float
    recall: float
    rss_mb: float

    def markdown(self) -> str:
        return (
            f"| {self.n:,} | {self.dim} | {self.index_dim} | {self.trees} | {self.build_s:.1f} "
            f"| {self.build_peak_mb:,.0f} | {self.annoy_mb:,.0f} | {self.vectors_mb:,.0f} | {self.mode} "
            f"| {self.search_k} | {self.p50_ms:.2f} | {self.p99_ms:.2f} | {self.recall:.3f} "
            f"| {self.rss_mb:,.0f} |"
        )


HEADER = (
    "| n | dim | index dim | trees | build s | build peak RSS MB | annoy MB | vectors MB | path "
    "| search_k | p50 ms | p99 ms | recall@10 | RSS after queries MB |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def measure_queries(reader: IndexReader, queries: np.ndarray, truth: np.ndarray, **search) -> tuple:
    ids = np.asarray(reader._ids)  # row -> id, to compare with the row numbers of the exact truth
    latencies, hits = [], 0
    for q, true_rows in zip(queries, truth, strict=True):
        started = time.perf_counter()
        found, _ = reader.search(q, K, **search)
        latencies.append((time.perf_counter() - started) * 1000)
        hits += len(set(found.tolist()) & set(ids[true_rows].tolist()))
    return np.percentile(latencies, 50), np.percentile(latencies, 99), hits / truth.size


def bench_one(args, workdir: Path, vectors, queries, truth, trees: int, pca_dim: int) -> list[Row]:
    n, dim = vectors.shape
    gc.collect()
    reset_peak_rss()
    manifest = index_build(
        vectors,
        np.arange(n, dtype=np.int64),
        root=workdir,
        fingerprint="bench",
        n_trees=trees,
        pca_dim=pca_dim,
    )
    build_peak = rss_mb()[1]
    reader = IndexReader(build_path(workdir, manifest.version))
    common = dict(
        n=n,
        dim=dim,
        index_dim=manifest.index_dim,
        trees=trees,
        build_s=manifest.build_seconds,
        build_peak_mb=build_peak,
        annoy_mb=manifest.files.get("items.annoy", 0) / 2**20,
        vectors_mb=manifest.files["vectors.npy"] / 2**20,
    )
    rows = []
    if pca_dim == 0 and n <= args.exact_max:
        p50, p99, recall = measure_queries(reader, queries, truth, exact_threshold=n)
        rows.append(
            Row(
                **common,
                mode="exact",
                search_k="-",
                p50_ms=p50,
                p99_ms=p99,
                recall=recall,
                rss_mb=rss_mb()[0],
            )
        )
    for search_k in args.search_k:
        p50, p99, recall = measure_queries(reader, queries, truth, exact_threshold=0, search_k=search_k)
        rows.append(
            Row(
                **common,
                mode="annoy+rerank",
                search_k=search_k,
                p50_ms=p50,
                p99_ms=p99,
                recall=recall,
                rss_mb=rss_mb()[0],
            )
        )
    for row in rows:
        print(row.markdown(), flush=True)
    del reader
    build_dir_remove(build_path(workdir, manifest.version))  # published builds are read-only
    return rows


def bench_size(args, n: int, workdir: Path) -> list[Row]:
    dim = args.large_dim if n >= args.large_size else args.dim
    started = time.perf_counter()
    # Queries are held-out points of the same clusters: drawn together with the catalog, not indexed.
    points = clustered_unit_vectors(n + args.queries, dim, per_cluster=args.per_cluster, seed=args.seed)
    vectors, queries = points[:n], points[n:]
    truth = exact_top_k(vectors, queries, K)
    print(
        f"<!-- n={n:,} dim={dim}: data + exact truth in {time.perf_counter() - started:.1f}s -->", flush=True
    )
    rows = []
    for trees in args.trees:
        for pca_dim in [0, *([args.pca] if 0 < args.pca < dim else [])]:
            rows += bench_one(args, workdir, vectors, queries, truth, trees, pca_dim)
    return rows


def bench_backend_size(args, n: int, dim: int, workdir: Path, bench=None) -> None:
    from bench.index_backends import bench_backends

    started = time.perf_counter()
    points = clustered_unit_vectors(n + args.queries, dim, per_cluster=args.per_cluster, seed=args.seed)
    vectors, queries = points[:n], points[n:]
    truth = exact_top_k(vectors, queries, K)
    print(
        f"<!-- n={n:,} dim={dim}: data + exact truth in {time.perf_counter() - started:.1f}s -->", flush=True
    )
    if bench is None:
        bench_backends(args, n, dim, vectors, queries, truth, workdir)
    else:
        bench(args, vectors, queries, truth, workdir)
    print(f"<!-- load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())} -->", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ints = lambda text: [int(x) for x in text.split(",") if x]  # noqa: E731
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", type=ints, default=[10_000, 100_000], help="catalog sizes, comma-separated"
    )
    parser.add_argument("--dim", type=int, default=2048, help="vector dimension (ResNet-50 gives 2048)")
    parser.add_argument("--large-size", type=int, default=1_000_000, help="sizes from here use --large-dim")
    parser.add_argument("--large-dim", type=int, default=256, help="dimension for large sizes (memory)")
    parser.add_argument("--pca", type=int, default=256, help="also build with PCA to this dimension (0: no)")
    parser.add_argument("--trees", type=ints, default=[50], help="Annoy tree counts to build")
    parser.add_argument(
        "--search-k", type=ints, default=[10_000, 20_000, 40_000, 80_000], help="search_k values"
    )
    parser.add_argument("--queries", type=int, default=200, help="held-out queries per size")
    parser.add_argument("--per-cluster", type=int, default=50, help="mean points per cluster")
    parser.add_argument("--exact-max", type=int, default=200_000, help="also time exact search up to this n")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="where builds go (default: a temp dir)")
    parser.add_argument("--backends", action="store_true", help="compare the vector stores (see above)")
    sizes = lambda text: [tuple(int(x) for x in item.split("x")) for item in text.split(",") if item]  # noqa: E731
    parser.add_argument(
        "--backend-sizes", type=sizes, default=[(200_000, 256), (1_000_000, 256), (200_000, 1280)]
    )
    parser.add_argument("--pca-sizes", type=ints, default=[], help="Annoy with and without PCA at --dim")
    parser.add_argument("--ef", type=ints, default=[32, 64, 128], help="hnsw ef values (query breadth)")
    parser.add_argument("--hnsw-m", type=int, default=16)
    parser.add_argument("--hnsw-ef-construction", type=int, default=100)
    parser.add_argument(
        "--annoy-exact-floats", type=int, default=8_000_000, help="filtered: exact up to rows x dim"
    )
    parser.add_argument(
        "--hnsw-exact-floats", type=int, default=3_000_000, help="filtered: exact up to rows x dim"
    )
    parser.add_argument(
        "--filter-search-k", type=int, default=20_000, help="annoy search_k for filtered queries"
    )
    parser.add_argument("--filter-ef", type=int, default=64, help="hnsw ef for filtered queries")
    parser.add_argument(
        "--milvus-index",
        type=lambda text: [x.strip().upper() for x in text.split(",") if x.strip()],
        default=["HNSW", "FLAT"],
        help='--backends: Milvus Lite collections with these index types ("" skips Milvus)',
    )
    parser.add_argument(
        "--filter-queries", type=int, default=0, help="filtered: the first N queries (0: all)"
    )
    parser.add_argument(
        "--rounds", type=int, default=4, help="interleaved rounds (queries are split among them)"
    )
    parser.add_argument(
        "--fresh", type=int, default=0, help="fresh vectors for the delta benchmark (0: skip)"
    )
    parser.add_argument("--fresh-dim", type=int, default=1280)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-index-"))
    print(f"<!-- {platform.processor() or platform.machine()}, numpy {np.__version__}, {workdir} -->")
    print(f"<!-- load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} -->", flush=True)
    try:
        if args.fresh:
            from bench.index_fresh import bench_fresh

            bench_fresh(args)
        if args.backends:
            for n, dim in args.backend_sizes:
                bench_backend_size(args, n, dim, workdir)
        if args.pca_sizes:
            from bench.index_pca import bench_pca_size

            for n in args.pca_sizes:
                bench_backend_size(args, n, args.dim, workdir, bench_pca_size)
        if not (args.fresh or args.backends or args.pca_sizes):
            print(HEADER, flush=True)
            for n in args.sizes:
                bench_size(args, n, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"<!-- peak RSS of the whole run: {peak_mb:,.0f} MB -->")


if __name__ == "__main__":
    main()
