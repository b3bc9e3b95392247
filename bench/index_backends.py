"""The embedded vector backends side by side (``bench_index.py --backends``): the ``annoy`` store (a
published build searched through search.index.annoy_store), the ``hnsw`` store (search.index.hnsw) and
raw hnswlib ``knn_query`` on the very graph file the hnsw store loads (so the difference is the seam);
then the ``milvus`` store on Milvus Lite on the same data (bench/index_milvus.py).

Per catalog size: build time and size on disk; unfiltered recall@10 and p50/p99 latency over a sweep of
search_k / ef; filtered queries with 1 %, 10 % and 50 % of the vectors passing (k filled, recall@10
against the exact filtered top 10, p50/p99) for each store's automatic choice and for both of its paths
forced. One query at a time, one thread; every configuration runs in each round, rounds interleaved.
"""

from __future__ import annotations

import gc
import shutil
import time
from pathlib import Path

import hnswlib
import numpy as np

from search.index import IndexReader, index_build
from search.index.annoy_store import AnnoyStore
from search.index.attrs import Attrs, VectorFilter
from search.index.hnsw import HnswStore, graph_build
from search.index.hnsw.files import GRAPH_NAME
from search.index.publish import build_path, current_version

K = 10
CATEGORIES = 100


def dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) / 2**20


def timed_queries(search, queries: np.ndarray) -> tuple[list[float], list[np.ndarray]]:
    latencies, found = [], []
    for q in queries:
        started = time.perf_counter()
        ids = search(q)
        latencies.append((time.perf_counter() - started) * 1000)
        found.append(np.asarray(ids))
    return latencies, found


def interleaved(configs: dict, queries: np.ndarray, rounds: int) -> dict:
    """{name: (latencies, found per query)}: every config runs a slice of the queries in each round."""
    out = {name: ([], [None] * len(queries)) for name in configs}
    slices = np.array_split(np.arange(len(queries)), rounds)
    for part in slices:
        for name, search in configs.items():
            latencies, found = timed_queries(search, queries[part])
            out[name][0].extend(latencies)
            for i, ids in zip(part, found, strict=True):
                out[name][1][i] = ids
    return out


def recall(found: list[np.ndarray], truth: list[np.ndarray]) -> float:
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / sum(len(t) for t in truth)


def row(*cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def bench_backends(
    args, n: int, dim: int, vectors: np.ndarray, queries: np.ndarray, truth, workdir: Path
) -> None:
    ids = np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(args.seed + 1)
    categories = rng.integers(0, CATEGORIES, n)
    attrs = Attrs.of(ids, categories, rng.integers(100, 100_000, n), np.ones(n, dtype=bool))

    started = time.perf_counter()
    manifest = index_build(
        vectors, ids, root=workdir / "annoy", fingerprint="bench", n_trees=args.trees[0], attrs=attrs
    )
    annoy_s = time.perf_counter() - started
    gc.collect()
    started = time.perf_counter()
    graph_build(
        workdir / "hnsw", ids=ids, vectors=vectors, attrs=attrs, fingerprint="bench",
        m=args.hnsw_m, ef_construction=args.hnsw_ef_construction, mark=0.0,
    )  # fmt: skip
    hnsw_s = time.perf_counter() - started
    print(
        f"\n**n={n:,} dim={dim}**: build annoy ({args.trees[0]} trees) {annoy_s:.1f} s, "
        f"{dir_mb(workdir / 'annoy'):,.0f} MB; "
        f"hnsw (M={args.hnsw_m}, ef_construction={args.hnsw_ef_construction}) {hnsw_s:.1f} s, "
        f"{dir_mb(workdir / 'hnsw'):,.0f} MB (graph + vectors + ids + attributes)\n",
        flush=True,
    )
    reader = IndexReader(build_path(workdir / "annoy", manifest.version))
    annoy = AnnoyStore(reader, exact_threshold=0, exact_floats=args.annoy_exact_floats)
    hnsw = HnswStore(workdir / "hnsw", exact_floats=args.hnsw_exact_floats)
    raw = hnswlib.Index(space="ip", dim=dim)
    raw.load_index(str(build_path(workdir / "hnsw", current_version(workdir / "hnsw")) / GRAPH_NAME))

    _unfiltered(args, annoy, hnsw, raw, queries, [t for t in truth])
    _filtered(args, annoy, hnsw, vectors, queries, categories)
    del reader, annoy, hnsw, raw
    gc.collect()
    for folder in (workdir / "annoy", workdir / "hnsw"):
        remove_tree(folder)
    from bench.index_milvus import bench_milvus  # pymilvus only here (--milvus-index "" skips it)

    bench_milvus(args, n, dim, vectors, queries, truth, attrs, workdir)


def remove_tree(folder: Path) -> None:
    """Published builds are read-only: make the folders writable, then remove them."""
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
    shutil.rmtree(folder, ignore_errors=True)


def _unfiltered(args, annoy: AnnoyStore, hnsw: HnswStore, raw: hnswlib.Index, queries, truth) -> None:
    configs = {}
    for search_k in args.search_k:
        configs[("annoy store", f"search_k {search_k:,}")] = _annoy(annoy, search_k)
    for ef in args.ef:
        configs[("hnsw store", f"ef {ef}")] = _hnsw(hnsw, ef)
        configs[("raw hnswlib", f"ef {ef}")] = _raw(raw, ef)
    results = interleaved(configs, queries, args.rounds)
    print(row("engine", "setting", "recall@10", "p50 ms", "p99 ms"))
    print(row(*["---"] * 5))
    for (engine, setting), (latencies, found) in results.items():
        p50, p99 = np.percentile(latencies, [50, 99])
        print(row(engine, setting, f"{recall(found, truth):.3f}", f"{p50:.2f}", f"{p99:.2f}"), flush=True)


def _filtered(args, annoy: AnnoyStore, hnsw: HnswStore, vectors, queries, categories) -> None:
    print()
    print(row("passing", "engine", "path", "k filled", "recall@10", "p50 ms", "p99 ms"))
    print(row(*["---"] * 7))
    annoy.search_k, hnsw.ef = args.filter_search_k, args.filter_ef
    queries = queries[: args.filter_queries or len(queries)]
    for share in (0.01, 0.10, 0.50):
        wanted = frozenset(range(int(round(share * CATEGORIES))))
        flt = VectorFilter(categories=wanted)
        passing = np.flatnonzero(np.isin(categories, list(wanted)))
        scores = queries @ vectors[passing].T
        truth = [passing[np.argsort(-s)[:K]] for s in scores]
        configs = {}
        for name, store, auto in (
            ("annoy store", annoy, args.annoy_exact_floats),
            ("hnsw store", hnsw, args.hnsw_exact_floats),
        ):
            for path, below in (
                (f"auto (exact up to {auto / 1e6:g}M floats)", auto),
                ("in search", 0),  # exact only when rows x dim <= this: never
                ("exact", len(vectors) * vectors.shape[1]),  # always
            ):
                configs[(name, path)] = _filtered_search(store, flt, below)
        results = interleaved(configs, queries, args.rounds)
        for (engine, path), (latencies, found) in results.items():
            filled = np.mean([len(f) == K for f in found])
            p50, p99 = np.percentile(latencies, [50, 99])
            cells = (
                f"{share:.0%} ({len(passing):,})",
                engine,
                path,
                f"{filled:.0%}",
                f"{recall(found, truth):.3f}",
            )
            print(row(*cells, f"{p50:.2f}", f"{p99:.2f}"), flush=True)
    annoy.exact_floats, hnsw.exact_floats = args.annoy_exact_floats, args.hnsw_exact_floats


def _annoy(store: AnnoyStore, search_k: int):
    def search(q):
        store.search_k = search_k
        return store.search(q, K)[0]

    return search


def _hnsw(store: HnswStore, ef: int):
    def search(q):
        store.ef = ef
        return store.search(q, K)[0]

    return search


def _raw(index: hnswlib.Index, ef: int):
    def search(q):
        index.set_ef(ef)
        return index.knn_query(q, k=K, num_threads=1)[0][0]

    return search


def _filtered_search(store, flt: VectorFilter, exact_floats: int):
    def search(q):
        store.exact_floats = exact_floats
        return store.search(q, K, flt)[0]

    return search
