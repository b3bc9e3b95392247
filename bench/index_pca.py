"""Annoy with and without PCA (``bench_index.py --pca-sizes``), through the site's query path.

Per catalog size (at ``--dim``, 1280 for the fallback model): one build without PCA and one with PCA to
``--pca`` dimensions, each searched through ``AnnoyStore`` (Annoy candidates re-ranked exactly against the
full vectors, what a query of the annoy backend runs) for every ``--search-k``, next to the exact search
the store falls back to below ``SEARCH_EXACT_THRESHOLD``. Recall@10 against exact search and p50/p99
latency, one query at a time, every configuration in each of ``--rounds`` interleaved rounds; build time
(the PCA fit included) and Annoy file size. The figures choose ``SEARCH_PCA_MIN_VECTORS``.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path

import numpy as np

from bench.index_backends import dir_mb, interleaved, recall, remove_tree, row
from search.index import IndexReader, index_build
from search.index.annoy_store import AnnoyStore
from search.index.publish import build_path

K = 10


def bench_pca_size(args, vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray, workdir: Path) -> None:
    n, dim = vectors.shape
    ids = np.arange(n, dtype=np.int64)
    stores, builds = {}, []
    for label, pca_dim in (("no PCA", 0), (f"PCA {args.pca}", args.pca)):
        root = workdir / f"pca-{pca_dim}"
        gc.collect()
        started = time.perf_counter()
        manifest = index_build(
            vectors, ids, root=root, fingerprint="bench", n_trees=args.trees[0], pca_dim=pca_dim
        )
        seconds = time.perf_counter() - started
        reader = IndexReader(build_path(root, manifest.version))
        stores[label] = AnnoyStore(reader, exact_threshold=0)
        explained = manifest.params.get("pca_explained_variance")
        annoy_mb = manifest.files.get("items.annoy", 0) / 2**20
        builds.append(
            f"{label}: build {seconds:.1f} s, Annoy file {annoy_mb:,.0f} MB"
            + (f", explained variance {explained:.3f}" if explained else "")
            + f", folder {dir_mb(root):,.0f} MB"
        )
    print(f"\n**n={n:,} dim={dim}** ({args.trees[0]} trees): " + "; ".join(builds) + "\n", flush=True)

    table, every_row = stores["no PCA"].table, np.arange(n)
    configs = {("exact", "-"): lambda q: table.exact(q, K, every_row)[0]}
    for search_k in args.search_k:
        for label, store in stores.items():
            configs[(label, f"{search_k:,}")] = _annoy(store, search_k)
    results = interleaved(configs, queries, args.rounds)
    print(row("n", "path", "search_k", "recall@10", "p50 ms", "p99 ms"))
    print(row(*["---"] * 6))
    for (path, search_k), (latencies, found) in results.items():
        p50, p99 = np.percentile(latencies, [50, 99])
        cells = (f"{n:,}", path, search_k, f"{recall(found, list(truth)):.3f}", f"{p50:.2f}", f"{p99:.2f}")
        print(row(*cells), flush=True)
    stores.clear()
    gc.collect()
    for pca_dim in (0, args.pca):
        remove_tree(workdir / f"pca-{pca_dim}")


def _annoy(store: AnnoyStore, search_k: int):
    def search(q):
        store.search_k = search_k
        return store.search(q, K)[0]

    return search
