"""The milvus store on Milvus Lite, on the same vectors, queries and categories as the embedded backends
(``bench_index.py --backends``, after their tables; ``--milvus-index ""`` skips it).

Milvus Lite is a test engine that speaks the Milvus server's client API, with FAISS (HNSW) or NumPy
(FLAT) underneath and Python around it, running inside this process behind a loopback gRPC server:
its figures say what the seam costs on Lite and whether it fills k, not how a Milvus server performs.

Per index type (``--milvus-index``, default HNSW and FLAT): insert, flush and size on disk; unfiltered
recall@10 and p50/p99 (HNSW over ``--ef``); filtered queries with 1 %, 10 % and 50 % passing, both
through ``MilvusStore.search`` (the engine's filtered search, then the exact search of the passing rows
when the engine returns fewer than k) and the engine's answer alone (how often it comes back short).
"""

from __future__ import annotations

import gc
import shutil
import time
from pathlib import Path

import numpy as np

from bench.index_backends import CATEGORIES, K, dir_mb, interleaved, recall, row
from search.index.attrs import Attrs, VectorFilter
from search.index.milvus import MilvusStore, collection_create, filter_expression, milvus_client

INSERT_BATCH = 20_000


def bench_milvus(
    args, n: int, dim: int, vectors: np.ndarray, queries: np.ndarray, truth, attrs: Attrs, workdir: Path
) -> None:
    from milvus_lite import server_manager_instance

    if not args.milvus_index:
        return
    folder = workdir / "milvus.db"
    client = milvus_client(str(folder))
    stores, built = {}, []
    ids = np.arange(n, dtype=np.int64)
    for index in args.milvus_index:
        name = f"bench_{index.lower()}"
        collection_create(client, name, fingerprint="bench", dim=dim, index_type=index)
        store = MilvusStore(client, name, ef=args.filter_ef)
        started = time.perf_counter()
        for start in range(0, n, INSERT_BATCH):
            part = np.arange(start, min(start + INSERT_BATCH, n))
            store.upsert(ids[part], vectors[part], attrs.take(part))
        inserted = time.perf_counter() - started
        started = time.perf_counter()
        store.flush()
        store.search(queries[0], K)  # the first search after a flush may build or load the index
        flushed = time.perf_counter() - started
        stores[index] = store
        built.append(f"{index} insert {inserted:.1f} s, flush + first search {flushed:.1f} s")
    print(
        f"\n**Milvus Lite, n={n:,} dim={dim}**: {'; '.join(built)}; "
        f"{dir_mb(folder):,.0f} MB on disk (both collections)\n",
        flush=True,
    )
    _unfiltered(args, stores, queries, truth)
    _filtered(args, stores, vectors, queries, attrs.category)
    del stores
    gc.collect()
    server_manager_instance.release_server(str(folder))
    shutil.rmtree(folder, ignore_errors=True)


def _unfiltered(args, stores: dict, queries, truth) -> None:
    configs = {}
    for index, store in stores.items():
        for ef in args.ef if index.startswith("HNSW") else [None]:
            setting = f"{index} ef {ef}" if ef else index
            configs[("milvus store (Lite)", setting)] = _search(store, ef or store.ef, None)
    results = interleaved(configs, queries, args.rounds)
    print(row("engine", "setting", "recall@10", "p50 ms", "p99 ms"))
    print(row(*["---"] * 5))
    for (engine, setting), (latencies, found) in results.items():
        p50, p99 = np.percentile(latencies, [50, 99])
        print(row(engine, setting, f"{recall(found, truth):.3f}", f"{p50:.2f}", f"{p99:.2f}"), flush=True)


def _filtered(args, stores: dict, vectors, queries, categories) -> None:
    print()
    print(row("passing", "engine", "path", "k filled", "recall@10", "p50 ms", "p99 ms"))
    print(row(*["---"] * 7))
    for share in (0.01, 0.10, 0.50):
        flt = VectorFilter(categories=frozenset(range(int(round(share * CATEGORIES)))))
        passing = np.flatnonzero(np.isin(categories, list(flt.categories)))
        scores = queries @ vectors[passing].T
        truth = [passing[np.argsort(-s)[:K]] for s in scores]
        configs = {}
        for index, store in stores.items():
            configs[(f"milvus store (Lite {index})", "store: engine, exact if short")] = _search(
                store, args.filter_ef, flt
            )
            configs[(f"milvus store (Lite {index})", "engine's answer alone")] = _engine(
                store, args.filter_ef, flt
            )
        results = interleaved(configs, queries, args.rounds)
        for (engine, path), (latencies, found) in results.items():
            filled = np.mean([len(f) == K for f in found])
            p50, p99 = np.percentile(latencies, [50, 99])
            cells = (f"{share:.0%} ({len(passing):,})", engine, path, f"{filled:.0%}")
            print(row(*cells, f"{recall(found, truth):.3f}", f"{p50:.2f}", f"{p99:.2f}"), flush=True)


def _search(store: MilvusStore, ef: int, flt: VectorFilter | None):
    def search(q):
        store.ef = ef
        return store.search(q, K, flt)[0]

    return search


def _engine(store: MilvusStore, ef: int, flt: VectorFilter):
    expression = filter_expression(flt)

    def search(q):
        store.ef = ef
        return store._engine_search(q, K, expression)[0]

    return search
