"""Query cost with N vectors embedded since the last build on the annoy backend (``bench_index.py
--fresh N``): before, every query read all of them from the database (the ``_CandidateSources`` of
commit 71e4743: one SELECT of every fresh vector, stacked, scored exactly); after, this process holds them
in memory (search.services.stores) and each query only lists what changed since its last look.

Runs Django with the test settings on a temporary SQLite database (no build: both sides search only the
fresh vectors, so the difference is the fresh handling alone). Rows are dated an hour back, outside the
sync overlap window, as they would be between builds. Interleaved rounds; also counts SQL queries and
vector rows read per query.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

FINGERPRINT = "bench-fresh"


def _django(workdir: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop_search.settings.test")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.SEARCH_INDEX_DIR = workdir / "index"
    call_command("migrate", verbosity=0)


def _catalog(n: int, dim: int) -> np.ndarray:
    from django.utils import timezone

    from catalog.models import Product, ProductImage
    from search.models import ImageEmbedding
    from search.services.state import vector_to_bytes

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for start in range(0, n, 2000):
        part = range(start, min(n, start + 2000))
        products = Product.objects.bulk_create(Product(sku=f"F-{i}", name=f"F {i}", price=1) for i in part)
        images = ProductImage.objects.bulk_create(
            ProductImage(product=p, image=f"f/{i}.jpg", sha256=f"{i:064x}", width=8, height=8)
            for i, p in zip(part, products, strict=True)
        )
        ImageEmbedding.objects.bulk_create(
            ImageEmbedding(
                image=image,
                fingerprint=FINGERPRINT,
                content_sha256=f"{i:064x}",
                status="done",
                vector=vector_to_bytes(vectors[i]),
                dim=dim,
            )  # fmt: skip
            for i, image in zip(part, images, strict=True)
        )
    an_hour_ago = timezone.now() - timedelta(hours=1)
    ImageEmbedding.objects.update(updated_at=an_hour_ago)
    Product.objects.update(updated_at=an_hour_ago)
    return vectors


def _before(dim: int):
    from search.selectors import fresh_embeddings
    from search.services.state import vectors_from_rows

    def search(q: np.ndarray):
        rows = list(fresh_embeddings(FINGERPRINT, None).values_list("image_id", "vector"))
        ids = np.array([row[0] for row in rows], dtype=np.int64)
        sims = (vectors_from_rows([row[1] for row in rows], dim) @ q[:, None]).max(axis=1)
        return ids[np.argsort(-sims)[:40]]

    return search


def _after(dim: int):
    from search.services.stores import annoy_query_store

    def search(q: np.ndarray):
        return annoy_query_store(FINGERPRINT, dim, None).search(q, 40)[0]

    return search


def bench_fresh(args) -> None:
    from bench.index_backends import interleaved

    workdir = Path(tempfile.mkdtemp(prefix="bench-fresh-"))
    _django(workdir)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    n, dim = args.fresh, args.fresh_dim
    started = time.perf_counter()
    vectors = _catalog(n, dim)
    print(f"\n<!-- fresh: {n:,} x {dim} rows written in {time.perf_counter() - started:.1f}s -->")
    queries = vectors[: args.queries] + 0.05 * np.random.default_rng(1).standard_normal((args.queries, dim))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    before, after = _before(dim), _after(dim)
    started = time.perf_counter()
    after(queries[0])  # this process's first look: reads every fresh vector once
    first_ms = (time.perf_counter() - started) * 1000
    results = interleaved({"before": before, "after": after}, queries, args.rounds)
    agree = np.mean([a[0] == b[0] for a, b in zip(results["before"][1], results["after"][1], strict=True)])
    print(
        f"\n**{n:,} fresh vectors x {dim}-d** (first look of a process: {first_ms:,.0f} ms; "
        f"same top hit: {agree:.0%})\n"
    )
    print(
        "| fresh vectors | path | p50 ms | p99 ms | SQL queries per query | of them reading vectors "
        "| vector rows read |"
    )
    print("|---|---|---|---|---|---|---|")
    read = _count_sync_reads()
    for name, search in (("before", before), ("after", after)):
        read.clear()
        with CaptureQueriesContext(connection) as captured:
            search(queries[0])
        vector_sql = [q for q in captured.captured_queries if '"search_imageembedding"."vector"' in q["sql"]]
        rows = n if name == "before" else sum(read)  # before: fresh_embeddings() returns every fresh row
        p50, p99 = np.percentile(results[name][0], [50, 99])
        sql = f"{len(captured.captured_queries)} | {len(vector_sql)}"
        print(f"| {n:,} | {name} | {p50:.2f} | {p99:.2f} | {sql} | {rows:,} |", flush=True)


def _count_sync_reads() -> list[int]:
    """Records how many vector rows each sync of the query stores reads."""
    import search.services.stores as stores

    read: list[int] = []
    real = stores.store_sync

    def counting(store, cursor):
        report = real(store, cursor)
        read.append(report.vectors_read)
        return report

    stores.store_sync = counting
    return read
