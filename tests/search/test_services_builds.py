"""Index builds: coalescing, one at a time, failures keep the old index, models never mix."""

from datetime import timedelta

import pytest
from django.utils import timezone

import search.index
from search.embedder import current_embedder, reset_embedder
from search.index import current_index
from search.models import ImageEmbedding, IndexBuild
from search.services import (
    image_embed,
    index_build_request,
    index_build_run,
    index_status,
    product_index_statuses,
)
from search.services.state import query_embedder, serving_index
from tests.search.shop_helpers import add_product, build_now, search_photo

pytestmark = pytest.mark.django_db


def test_build_records_progress_and_manifest(shop, settings):
    build = build_now()

    assert build.status == IndexBuild.Status.SUCCEEDED
    assert (build.total, build.done, build.failed) == (6, 6, 0)  # pending photos embedded first
    assert build.vectors == 6 and build.dim == current_embedder().dim
    assert build.version == current_index(settings.SEARCH_INDEX_DIR).version
    assert build.size_bytes > 0 and build.params["n_trees"] == settings.SEARCH_ANNOY_TREES
    assert build.started_at <= build.finished_at and build.embeddings_until is not None
    assert build.fingerprint == current_embedder().fingerprint


def test_inactive_products_are_left_out_of_the_build(shop):
    products, _ = shop
    products["chair"].is_active = False
    products["chair"].save()

    assert build_now().vectors == 5


def test_failed_build_keeps_the_old_index_serving(shop, photo_bytes, settings, monkeypatch):
    first = build_now()

    def broken_build(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(search.index, "index_build", broken_build)
    second = build_now()

    assert second.status == IndexBuild.Status.FAILED
    assert "No space left on device" in second.error and second.finished_at is not None
    assert current_index(settings.SEARCH_INDEX_DIR).version == first.version
    assert search_photo(photo_bytes("pan.webp"), k=1)[0].product.sku == "pan"
    status = index_status()
    assert status.current_build.version == first.version
    assert "No space left on device" in status.last_error


def test_requests_while_a_build_runs_coalesce_into_one_follow_up(
    shop, monkeypatch, django_capture_on_commit_callbacks
):
    real_build = search.index.index_build
    during_run = []

    def build_and_request_twice(*args, **kwargs):
        # Two admins ask for a rebuild while this build is running.
        during_run.extend([index_build_request(), index_build_request()])
        return real_build(*args, **kwargs)

    monkeypatch.setattr(search.index, "index_build", build_and_request_twice)
    first = index_build_request(enqueue=False)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        index_build_run(build_id=first.pk)
        monkeypatch.setattr(search.index, "index_build", real_build)

    follow_up = during_run[0]
    assert during_run[1].pk == follow_up.pk and follow_up.pk != first.pk
    assert len(callbacks) == 1  # enqueued once, when the first build ended, not per request
    assert list(IndexBuild.objects.order_by("id").values_list("status", flat=True)) == ["succeeded"] * 2


def test_request_while_one_is_queued_returns_the_queued_build(shop):
    first = index_build_request(enqueue=False)
    assert index_build_request().pk == first.pk
    assert IndexBuild.objects.count() == 1


def test_a_second_build_does_not_start_while_one_runs(shop, settings):
    IndexBuild.objects.create(status=IndexBuild.Status.RUNNING, started_at=timezone.now())
    queued = IndexBuild.objects.create()

    result = index_build_run(build_id=queued.pk)

    assert result.status == IndexBuild.Status.QUEUED
    assert current_index(settings.SEARCH_INDEX_DIR) is None


def test_a_lost_build_does_not_block_new_builds_forever(shop):
    lost = IndexBuild.objects.create(
        status=IndexBuild.Status.RUNNING, started_at=timezone.now() - timedelta(days=1)
    )
    queued = IndexBuild.objects.create()

    assert index_build_run(build_id=queued.pk).status == IndexBuild.Status.SUCCEEDED
    lost.refresh_from_db()
    assert lost.status == IndexBuild.Status.FAILED and "(lost lease)" in lost.error


def test_a_finished_build_is_not_run_again(shop):
    build = build_now()
    finished_at = build.finished_at

    again = index_build_run(build_id=build.pk)  # e.g. the task redelivered after a worker crash

    assert again.status == IndexBuild.Status.SUCCEEDED and again.finished_at == finished_at
    assert index_build_run(build_id=999_999) is None


def test_build_with_nothing_to_index_fails_with_a_reason():
    build = build_now()
    assert build.status == IndexBuild.Status.FAILED
    assert "Nothing to index" in build.error


def test_new_photos_schedule_a_rebuild_automatically(shop, photo_bytes, django_capture_on_commit_callbacks):
    build_now()
    with django_capture_on_commit_callbacks(execute=True):
        apple = add_product("apple", photo_bytes("apple.jpg"))

    # 1 new photo is > 10% of a 6-vector index: the eager worker embedded it and rebuilt the index.
    assert IndexBuild.objects.filter(status=IndexBuild.Status.SUCCEEDED).count() == 2
    assert product_index_statuses([apple])[apple.pk].state == "indexed"


def test_few_new_photos_in_a_big_index_do_not_rebuild(shop, photo_bytes, monkeypatch):
    from search.services import build_queue

    build_now()
    monkeypatch.setattr(build_queue, "REBUILD_FRESH_SHARE", 0.5)  # as if the index were large
    apple = add_product("apple", photo_bytes("apple.jpg"))

    image_embed(image_id=apple.images.get().pk)

    assert IndexBuild.objects.count() == 1
    assert product_index_statuses([apple])[apple.pk].state == "embedded"


def test_photos_of_hidden_products_do_not_request_a_rebuild(shop, photo_bytes):
    """The freshness rule is one selector: a new photo of an inactive product is not searchable and
    is left out of builds, so it must not count toward the next rebuild either."""
    from catalog.services import product_set_active

    build_now()
    hidden = add_product("hidden", photo_bytes("apple.jpg"))
    product_set_active(products=[hidden], active=False)

    image_embed(image_id=hidden.images.get().pk)  # would request a build if the photo counted

    assert IndexBuild.objects.count() == 1
    assert index_status().state == "ready"  # not "stale": nothing searchable waits for a build


def _scores(hits) -> dict[str, float]:
    return {hit.product.sku: round(hit.score, 5) for hit in hits}


def test_two_models_never_mix_and_the_old_index_keeps_serving(shop, photo_bytes, settings, fresh_embedder):
    products, _ = shop
    build_a = build_now()
    fingerprint_a = current_embedder().fingerprint
    before = _scores(search_photo(photo_bytes("cup.webp"), k=6))

    # Switch the model (here: the preprocessing, which is part of the fingerprint).
    settings.SEARCH_CENTER_CROP = False
    reset_embedder()
    assert current_embedder().fingerprint != fingerprint_a
    status = index_status()
    assert status.state == "model-mismatch" and not status.current_build.fingerprint_matches

    # Until the new build is published, the A index answers, with model A: the very same scores,
    # even once some photos have model-B vectors (those are never compared with A vectors).
    for sku in ("cup", "hammer"):
        image_embed(image_id=products[sku].images.get().pk, schedule_build=False)
    assert ImageEmbedding.objects.exclude(fingerprint=fingerprint_a).count() == 2
    assert _scores(search_photo(photo_bytes("cup.webp"), k=6)) == before
    assert query_embedder(serving_index()).fingerprint == fingerprint_a

    build_b = build_now()
    assert build_b.fingerprint != build_a.fingerprint and build_b.vectors == 6
    assert ImageEmbedding.objects.filter(fingerprint=fingerprint_a).count() == 6  # old vectors kept
    assert index_status().state == "ready"
    after = _scores(search_photo(photo_bytes("cup.webp"), k=6))
    assert query_embedder(serving_index()).fingerprint == build_b.fingerprint
    assert set(after) == set(before) and after != before  # now model B's own scores


def test_if_the_old_model_cannot_be_loaded_only_the_new_models_vectors_answer(
    shop, photo_bytes, settings, fresh_embedder, monkeypatch
):
    import search.embedding

    products, _ = shop
    build_now()
    settings.SEARCH_CENTER_CROP = False
    reset_embedder()

    def unloadable(spec, **kwargs):
        raise search.embedding.WeightsError("weights file gone")

    monkeypatch.setattr(search.embedding, "build_embedder_from_spec", unloadable)
    assert search_photo(photo_bytes("cup.webp"), k=5) == []  # nothing embedded by the new model yet

    for sku in ("cup", "hammer"):
        image_embed(image_id=products[sku].images.get().pk, schedule_build=False)
    hits = search_photo(photo_bytes("cup.webp"), k=5)
    assert [hit.product.sku for hit in hits] == ["cup", "hammer"]  # only vectors of the new model
    assert index_status().exact_fallback


def test_changed_photo_content_gets_a_new_vector(shop, photo_bytes):
    products, _ = shop
    build_now()
    image = products["cup"].images.get()
    embedding = image.embeddings.get()

    # Same row, new content (e.g. a repaired file): the old vector no longer counts as settled.
    image.sha256 = "0" * 64
    image.save()
    assert index_status().pending == 1
    image_embed(image_id=image.pk, schedule_build=False)

    embedding.refresh_from_db()
    assert embedding.content_sha256 == "0" * 64 and embedding.attempts == 2


def test_a_model_switch_requests_a_rebuild_that_reembeds_the_catalog(shop, settings, fresh_embedder):
    from search.services import index_build_schedule_if_stale
    from search.tasks import index_check

    build_a = build_now()
    assert index_build_schedule_if_stale() is None  # same model, nothing new: no build

    settings.SEARCH_CENTER_CROP = False  # the model changes (here its preprocessing)
    reset_embedder()
    assert index_status().state == "model-mismatch"

    requested = index_build_schedule_if_stale()
    assert requested is not None and requested.status == IndexBuild.Status.QUEUED
    assert index_check() == f"build {requested.pk} requested"  # coalesced with the queued one
    assert IndexBuild.objects.filter(status=IndexBuild.Status.QUEUED).count() == 1

    build_b = index_build_run(build_id=requested.pk)
    assert build_b.status == IndexBuild.Status.SUCCEEDED and build_b.vectors == 6
    assert build_b.fingerprint != build_a.fingerprint
    assert ImageEmbedding.objects.filter(fingerprint=build_b.fingerprint).count() == 6
    assert index_status().state == "ready"
    assert index_check() == "up to date"


@pytest.mark.parametrize(
    ("mode", "min_vectors", "projected"),
    [("auto", 6, True), ("auto", 7, False), ("on", 1_000, True), ("off", 0, False)],
)
def test_pca_is_used_from_the_size_the_rule_names(shop, settings, mode, min_vectors, projected):
    # The shop's 6 vectors fit only a few components: PCA_DIM 4 stands in for 256 here.
    settings.SEARCH_PCA, settings.SEARCH_PCA_MIN_VECTORS, settings.SEARCH_PCA_DIM = mode, min_vectors, 4

    build = build_now()

    manifest = current_index(settings.SEARCH_INDEX_DIR).manifest
    assert build.status == IndexBuild.Status.SUCCEEDED
    assert (manifest.pca, manifest.index_dim) == ((True, 4) if projected else (False, build.dim))
    assert build.params["pca_dim"] == (4 if projected else 0) and build.params["pca"] == mode


def test_pca_default_is_auto_from_the_measured_size():
    """The default (docs/benchmarks.md, "Annoy with and without PCA"): catalogs from
    SEARCH_PCA_MIN_VECTORS up are projected to 256 dimensions, smaller ones are not."""
    from search.index.pca import pca_dim_for
    from shop_search.settings import base

    rule = dict(mode=base.SEARCH_PCA, dim=base.SEARCH_PCA_DIM, min_vectors=base.SEARCH_PCA_MIN_VECTORS)

    assert (base.SEARCH_PCA, base.SEARCH_PCA_DIM, base.SEARCH_PCA_MIN_VECTORS) == ("auto", 256, 50_000)
    assert pca_dim_for(49_999, **rule) == 0 and pca_dim_for(50_000, **rule) == 256
    assert pca_dim_for(2_000_000, **rule) == 256
    with pytest.raises(ValueError, match="auto, on, off"):
        pca_dim_for(10, mode="yes", dim=256, min_vectors=0)
