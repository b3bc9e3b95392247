"""The same behaviour on every vector backend (SEARCH_VECTOR_BACKEND), through the services: a photo is
found as soon as it is embedded, deleted or hidden products are gone from the results and from the
store, filters fill k at 1 % selectivity, a model switch fails no query, and status names the backend."""

import os
import subprocess
import sys

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog.models import Product, ProductImage
from catalog.services import product_delete, product_set_active
from search.embedder import current_embedder
from search.index.attrs import VectorFilter
from search.models import ImageEmbedding, IndexBuild
from search.services import image_embed, index_status
from search.services.ranking import Filters, Ranker
from search.services.state import serving_index, vector_to_bytes
from search.services.stores import query_store
from tests.factories import CategoryFactory
from tests.search.shop_helpers import add_product, build_now, search_photo

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["annoy", "hnsw", "milvus"])
def backend(request, settings):
    settings.SEARCH_VECTOR_BACKEND = request.param
    if request.param == "milvus":
        request.getfixturevalue("milvus_lite")
    return request.param


def store_now():
    """The store queries search now: the configured backend's own (not the exact fallback)."""
    from django.conf import settings

    embedder = current_embedder()
    store = query_store(embedder.fingerprint, embedder.dim, serving_index())
    assert store.backend == settings.SEARCH_VECTOR_BACKEND
    return store


def image_of(product: Product) -> int:
    return product.images.get().pk


def test_a_newly_embedded_photo_is_found_at_once_without_a_build(backend, shop, photo_bytes):
    build_now()
    builds = IndexBuild.objects.count()
    orange = add_product("ORA-1", photo_bytes("orange.jpg"))

    image_embed(image_id=image_of(orange), schedule_build=False)

    assert [hit.product.sku for hit in search_photo(photo_bytes("orange.jpg"), k=1)] == ["ORA-1"]
    assert list(store_now().contains([image_of(orange)])) == [image_of(orange)]
    assert IndexBuild.objects.count() == builds


def test_a_deleted_product_is_gone_from_results_and_from_the_store(
    backend, shop, photo_bytes, django_capture_on_commit_callbacks
):
    build_now()
    products, _ = shop
    cup_image = image_of(products["cup"])
    with django_capture_on_commit_callbacks(execute=True):  # the sync the deletion requests runs
        product_delete(product=products["cup"])

    assert "cup" not in [hit.product.sku for hit in search_photo(photo_bytes("cup.webp"), k=6)]
    assert len(store_now().contains([cup_image])) == 0
    assert store_now().count() == 5


def test_a_deactivated_product_is_gone_and_the_engine_filters_it(
    backend, shop, photo_bytes, django_capture_on_commit_callbacks
):
    build_now()
    products, _ = shop
    with django_capture_on_commit_callbacks(execute=True):
        product_set_active(products=[products["pan"]], active=False)

    assert "pan" not in [hit.product.sku for hit in search_photo(photo_bytes("pan.webp"), k=6)]
    store = store_now()
    pan_vector = ImageEmbedding.objects.get(image_id=image_of(products["pan"]))
    ids, _ = store.search(np.frombuffer(pan_vector.vector, dtype="<f4"), 6, VectorFilter())
    assert image_of(products["pan"]) not in ids and len(ids) == 5

    with django_capture_on_commit_callbacks(execute=True):
        product_set_active(products=[products["pan"]], active=True)
    assert search_photo(photo_bytes("pan.webp"), k=1)[0].product.sku == "pan"


def synthetic_catalog(n: int, rare_every: int):
    """n products with one embedded photo each (random unit vectors under the current model); every
    ``rare_every``-th is in the "Rare" category. Returns (rare category, vectors)."""
    embedder = current_embedder()
    common, rare = CategoryFactory(name="Common"), CategoryFactory(name="Rare")
    products = Product.objects.bulk_create(
        Product(sku=f"SYN-{i}", name=f"Syn {i}", price=10, category=rare if i % rare_every == 0 else common)
        for i in range(n)
    )
    sha = [f"{i:064x}" for i in range(n)]
    images = ProductImage.objects.bulk_create(
        ProductImage(product=product, image=f"synthetic/{i}.jpg", sha256=sha[i], width=8, height=8)
        for i, product in enumerate(products)
    )
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, embedder.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ImageEmbedding.objects.bulk_create(
        ImageEmbedding(
            image=image,
            fingerprint=embedder.fingerprint,
            content_sha256=sha[i],
            status=ImageEmbedding.Status.DONE,
            vector=vector_to_bytes(vectors[i]),
            dim=embedder.dim,
        )
        for i, image in enumerate(images)
    )
    return rare, vectors


def test_a_filter_passing_one_percent_fills_k(backend, settings):
    settings.SEARCH_EXACT_THRESHOLD = 0  # Annoy's trees answer, however small the catalog
    settings.SEARCH_ANNOY_FILTER_EXACT_FLOATS = 0  # the in-search filter, not the exact search, at 1 %
    settings.SEARCH_HNSW_FILTER_EXACT_FLOATS = 0
    rare, vectors = synthetic_catalog(400, rare_every=100)  # 4 of 400 pass
    assert build_now().status == "succeeded"
    embedder = current_embedder()
    ranker = Ranker(embedder.fingerprint, serving_index(), {}, dim=embedder.dim)

    for query in vectors[1:6]:  # queries near products that do not pass
        hits = ranker.hits(query[None, :], k=4, filters=Filters(category_ids=frozenset({rare.pk})))
        assert len(hits) == 4 and {hit.product.category_id for hit in hits} == {rare.pk}
        assert len(ranker.hits(query[None, :], k=10, filters=Filters(category_ids=frozenset({rare.pk})))) == 4


def test_a_model_switch_fails_no_query(backend, shop, photo_bytes, settings, fresh_embedder):
    from search.embedder import reset_embedder
    from search.services import catalog_embed_pending

    old = build_now()
    settings.SEARCH_CENTER_CROP = False  # another model fingerprint
    reset_embedder()
    assert search_photo(photo_bytes("hammer1.webp"), k=1)[0].product.sku == "hammer"  # the old model serves

    catalog_embed_pending()  # the worker re-embeds the catalog in the background
    assert search_photo(photo_bytes("hammer1.webp"), k=1)[0].product.sku == "hammer"
    assert serving_index().fingerprint == old.fingerprint

    new = build_now()
    assert new.status == "succeeded" and new.fingerprint != old.fingerprint
    assert serving_index().fingerprint == new.fingerprint
    assert search_photo(photo_bytes("hammer1.webp"), k=1)[0].product.sku == "hammer"


@pytest.mark.parametrize("shared", ["hnsw", "milvus"])
def test_during_a_model_switch_a_sync_writes_the_new_model_store_and_the_serving_one(
    shared, shop, settings, fresh_embedder, request, django_capture_on_commit_callbacks
):
    """Until the new model's build swaps the serving store, the old model's store still answers: a
    deletion must reach it too, not only the new model's store (search.services.shared_stores)."""
    from search.embedder import reset_embedder

    settings.SEARCH_VECTOR_BACKEND = shared
    if shared == "milvus":
        request.getfixturevalue("milvus_lite")
    old = build_now()
    products, _ = shop
    cup_image = image_of(products["cup"])
    settings.SEARCH_CENTER_CROP = False  # another model fingerprint; its build has not run
    reset_embedder()

    with django_capture_on_commit_callbacks(execute=True):  # the sync the deletion requests runs
        product_delete(product=products["cup"])

    serving = serving_index()
    assert serving.fingerprint == old.fingerprint != current_embedder().fingerprint
    assert serving.contains([cup_image]) == set() and serving.count() == 5
    assert query_store(current_embedder().fingerprint, current_embedder().dim, serving).backend == shared


def test_status_and_search_status_name_the_backend(backend, shop, capsys, admin_client):
    build_now()
    assert index_status().backend == backend
    call_command("search_status")
    assert f"Vector store: {backend}" in capsys.readouterr().out
    html = admin_client.get(reverse("admin:search_dashboard")).content.decode()
    assert f'<code data-field="backend">{backend}</code>' in html


def test_search_status_of_a_store_that_no_build_wrote_shows_no_build_number(settings, shop, capsys):
    settings.SEARCH_VECTOR_BACKEND = "hnsw"
    for image in ProductImage.objects.all():  # the worker keeps the store up to date: no build
        image_embed(image_id=image.pk, schedule_build=False)
    assert not IndexBuild.objects.exists() and store_now().count()

    call_command("search_status")

    current = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("Current index"))
    assert "#None" not in current and "vectors" in current, current


def test_annoy_queries_read_only_the_vectors_that_changed(settings, shop, photo_bytes):
    settings.SEARCH_VECTOR_BACKEND = "annoy"
    build_now()
    # Photos embedded after the build: the delta this process holds in memory.
    late = [add_product(f"LATE-{i}", name) for i, name in enumerate(["orange.jpg", "box.png", "bulb.webp"])]
    for product in late:
        image_embed(image_id=image_of(product), schedule_build=False)
    search_photo(photo_bytes("cup.webp"), k=3)  # the first look reads them once

    with CaptureQueriesContext(connection) as queries:
        search_photo(photo_bytes("cup.webp"), k=3)
    assert not _vector_reads(queries), "a query read stored vectors that did not change"

    mug = add_product("MUG-1", "cup.webp")
    image_embed(image_id=image_of(mug), schedule_build=False)
    with CaptureQueriesContext(connection) as queries:
        hits = search_photo(photo_bytes("cup.webp"), k=2)
    assert {hit.product.sku for hit in hits} == {"cup", "MUG-1"}  # found at once
    reads = _vector_reads(queries)
    assert len(reads) == 1 and f"IN ({image_of(mug)})" in reads[0]  # only the new photo's vector


def _vector_reads(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if '"search_imageembedding"."vector"' in q["sql"]]


def test_a_change_no_signal_announced_reaches_the_hnsw_store_with_the_periodic_sync(settings, shop):
    from django.utils import timezone

    from search.tasks import sync_vectors

    settings.SEARCH_VECTOR_BACKEND = "hnsw"
    build_now()
    products, _ = shop
    chair = image_of(products["chair"])
    # A bulk update sends no signal: only the periodic sync (Celery beat) brings it to the store.
    Product.objects.filter(pk=products["chair"].pk).update(price=999, updated_at=timezone.now())
    vector = np.frombuffer(ImageEmbedding.objects.get(image_id=chair).vector, dtype="<f4")
    assert chair in store_now().search(vector, 6, VectorFilter(max_cents=50_000))[0]

    assert sync_vectors().startswith("0 vectors upserted")  # attributes only: no vector re-sent
    assert chair not in store_now().search(vector, 6, VectorFilter(max_cents=50_000))[0]
    assert chair in store_now().search(vector, 6, VectorFilter(min_cents=99_900))[0]


def test_photo_deletions_are_forgotten_after_a_day_and_an_older_cursor_starts_over(settings, shop):
    from datetime import timedelta

    from django.utils import timezone

    from search.models import RemovedImage
    from search.services.vector_sync import SyncCursor, cursor_outdated, removed_images_prune

    products, _ = shop
    product_delete(product=products["cup"])
    assert RemovedImage.objects.count() == 1
    assert removed_images_prune() == 0
    assert removed_images_prune(now=timezone.now() + timedelta(days=1, minutes=1)) == 1
    assert cursor_outdated(SyncCursor(mark=timezone.now() - timedelta(days=1)))
    assert not cursor_outdated(SyncCursor(mark=timezone.now() - timedelta(hours=23)))


def test_a_model_switch_under_milvus_fills_a_new_collection_and_swaps_the_alias_when_built(
    milvus_lite, shop, photo_bytes, settings, fresh_embedder
):
    from search.embedder import reset_embedder
    from search.index.milvus import alias_target, shop_collections
    from search.services import catalog_embed_pending
    from search.services.milvus import milvus_connection, milvus_store, model_collection, serving_alias

    client = milvus_connection()
    first = build_now().fingerprint
    assert alias_target(client, serving_alias()) == model_collection(first)

    settings.SEARCH_CENTER_CROP = False  # a second model
    reset_embedder()
    catalog_embed_pending()  # the worker re-embeds the catalog: the new collection fills meanwhile
    second = current_embedder().fingerprint
    assert milvus_store(model_collection(second)).count() == 6
    assert alias_target(client, serving_alias()) == model_collection(first)  # the old model still serves
    assert search_photo(photo_bytes("cup.webp"), k=1)[0].product.sku == "cup"

    assert build_now().fingerprint == second
    assert alias_target(client, serving_alias()) == model_collection(second)
    assert serving_index().fingerprint == second and serving_index().backend == "milvus"
    # The collection it replaced stays (a query that resolved the alias just before finishes there) ...
    assert shop_collections(client, milvus_lite) == sorted(
        [model_collection(first), model_collection(second)]
    )

    settings.SEARCH_CENTER_CROP, settings.SEARCH_RESIZE = True, 240  # ... until the next swap: a third model
    reset_embedder()
    third = build_now().fingerprint
    assert alias_target(client, serving_alias()) == model_collection(third)
    assert shop_collections(client, milvus_lite) == sorted(
        [model_collection(second), model_collection(third)]
    )
    assert search_photo(photo_bytes("cup.webp"), k=1)[0].product.sku == "cup"


def test_a_milvus_server_that_cannot_be_reached_leaves_search_working_and_says_so(
    milvus_lite, shop, photo_bytes, settings
):
    from search.services.stores import forget_query_stores

    build_now()
    settings.SEARCH_MILVUS_URI = "http://127.0.0.1:9"  # nothing listens there
    forget_query_stores()
    assert search_photo(photo_bytes("pan.webp"), k=1)[0].product.sku == "pan"  # stored vectors, exactly
    status = index_status()
    assert status.backend == "milvus" and "cannot be reached" in status.index_problem


def test_a_milvus_server_that_fails_mid_query_leaves_that_search_working(
    milvus_lite, shop, photo_bytes, monkeypatch, caplog
):
    from pymilvus.exceptions import MilvusException

    from search.index.milvus import MilvusStore

    build_now()
    assert store_now().backend == "milvus"  # the lookup works: the failure comes during the search

    def gone(self, *args, **kwargs):
        raise MilvusException(message="connection reset by peer")

    monkeypatch.setattr(MilvusStore, "_engine_search", gone)

    assert search_photo(photo_bytes("pan.webp"), k=1)[0].product.sku == "pan"  # stored vectors, exactly
    assert "answered exactly instead" in caplog.text and "connection reset by peer" in caplog.text


def test_pymilvus_is_imported_only_under_the_milvus_backend():
    code = (
        "import sys, django; django.setup(); import shop_search.urls, search.tasks; "
        "from search.services.stores import forget_query_stores; forget_query_stores(); "
        "print(sorted(m for m in ('pymilvus', 'milvus_lite') if m in sys.modules))"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "shop_search.settings.test",
        "SEARCH_VECTOR_BACKEND": "annoy",
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
