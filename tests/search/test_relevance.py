"""The relevance self-test service on a tiny real catalog (tests/search/conftest.py RELEVANCE_SHOP):
seven products, the hammer and its twin sold with the very same picture (a confusion known by
construction), run through the real model and the one query service."""

from datetime import timedelta

import pytest
from django.utils import timezone

from search import metrics, services, tasks
from search.embedder import current_embedder
from search.models import RelevanceRun
from search.relevance.variants import variant_make, variant_rng
from search.services import PhotoSource, photo_search
from search.services.relevance_report import relevance_method, relevance_same_variants
from tests.search.conftest import RELEVANCE_SHOP
from tests.search.shop_helpers import build_now

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
TWINS = {"hammer", "hammer-twin"}


def run_now(**options) -> RelevanceRun:
    """Requests a run and runs it inline, as the command does."""
    run = services.relevance_run_request(enqueue=False, **options)
    return services.relevance_run(run_id=run.pk)


def test_figures_on_a_tiny_catalog_with_a_known_confusion(relevance_shop):
    by_id = {product.pk: sku for sku, product in relevance_shop.items()}

    run = run_now(photos=50, kinds=["reshot"])

    assert run.status == "succeeded", run.error
    assert run.total == run.done == len(RELEVANCE_SHOP)  # every photo (fewer than asked), one variant each
    ranks = {by_id[o["product_id"]]: o["rank"] for o in run.outcomes}
    firsts = {by_id[o["product_id"]]: by_id[o["top_product_id"]] for o in run.outcomes}
    # Identical pictures score identically: whichever twin wins the tie comes first for both twins'
    # variants; the other is the one product that is never found first, and it is taken for its twin.
    assert {firsts["hammer"], firsts["hammer-twin"]} < TWINS
    (winner,) = {firsts["hammer"]}
    (loser,) = TWINS - {winner}
    assert ranks[winner] == 1 and ranks[loser] == 2
    assert all(ranks[sku] == 1 for sku in relevance_shop if sku not in TWINS)  # distinct products: found
    assert run.r_at_1 == pytest.approx(6 / 7)
    assert run.r_at_10 == 1.0  # seven products: every one is among the first 10 results
    # Every search shows all 7 products: Tools 3/7 (three queries), Kitchen 2/7 (two), Furniture 1/7
    # (one); the apple has no category and is left out: (3*3/7 + 2*2/7 + 1*1/7) / 6 = 1/3.
    assert run.category_p_at_10 == pytest.approx(1 / 3)
    assert run.by_kind["all"]["category_queries"] == 6 and run.by_kind["reshot"]["r_at_1"] == run.r_at_1
    (hard,) = run.hardest
    assert (hard["sku"], hard["confused_sku"]) == (loser, winner)
    assert (hard["found_first"], hard["found_in_10"], hard["queries"], hard["confused_count"]) == (0, 1, 1, 1)
    assert hard["variant_thumbnail"].startswith("data:image/jpeg;base64,")


def test_outcomes_are_what_the_shoppers_search_returns_for_the_same_variant(relevance_shop):
    run = run_now(photos=50, kinds=["reshot", "scene"], seed=11)
    images = {image.pk: image for product in relevance_shop.values() for image in product.images.all()}

    assert run.status == "succeeded", run.error
    assert run.total == run.done == 2 * len(RELEVANCE_SHOP)
    for outcome in run.outcomes:
        image = images[outcome["image_id"]]
        # The variant is made again from the seed alone and searched as a shopper's upload.
        rng = variant_rng(11, image.sha256, outcome["kind"])
        data = variant_make(_rgb(image), outcome["kind"], rng, _scenes())
        hits = photo_search(PhotoSource(data=data), k=10).hits
        assert outcome["top_product_id"] == hits[0].product.pk
        assert outcome["top_score"] == pytest.approx(hits[0].score, abs=1e-4)  # this very photo's score
        place = [hit.product.pk for hit in hits].index(image.product_id) + 1
        assert outcome["rank"] == (place if place <= 10 else None)


def _rgb(image):
    from catalog.imaging import load_image

    with image.image.open("rb") as handle:
        return load_image(handle.read(), max_pixels=10**8)


def _scenes():
    from django.conf import settings

    from search.relevance.variants import scenes_load

    return scenes_load(settings.SEARCH_RELEVANCE_SCENES_DIR)


def test_runs_are_stored_per_model_and_the_same_seed_searches_the_same_variants(
    relevance_shop, fresh_embedder, settings
):
    first = run_now(photos=50, kinds=["reshot"], seed=5)
    again = run_now(photos=50, kinds=["reshot"], seed=5)
    other_seed = run_now(photos=50, kinds=["reshot"], seed=6)

    fingerprint = current_embedder().fingerprint
    assert (first.fingerprint, first.model_name, first.seed) == (fingerprint, "efficientnet_lite0", 5)
    assert "fallback" in first.model_warning and first.finished_at is not None and first.seconds > 0
    assert first.variant_set == again.variant_set != other_seed.variant_set
    assert [o["top_score"] for o in first.outcomes] == [o["top_score"] for o in again.outcomes]
    assert [o["top_score"] for o in first.outcomes] != [o["top_score"] for o in other_seed.outcomes]

    # Another model: the catalog is embedded again and its index published; the same seed then makes
    # the very same variants, so the two runs are listed side by side for a fair comparison.
    settings.SEARCH_BACKBONE, settings.SEARCH_UNTRAINED = "resnet18", True
    fresh_embedder_after_switch()
    assert build_now().status == "succeeded"
    switched = run_now(photos=50, kinds=["reshot"], seed=5)

    assert switched.status == "succeeded", switched.error
    assert switched.fingerprint == current_embedder().fingerprint != fingerprint
    assert "Untrained model resnet18" in switched.model_warning
    assert switched.variant_set == first.variant_set
    assert set(relevance_same_variants(switched)) == {first, again}
    assert RelevanceRun.objects.filter(fingerprint=fingerprint).count() == 3


def fresh_embedder_after_switch() -> None:
    from search.embedder import reset_embedder
    from search.services.state import forget_index_model

    reset_embedder()
    forget_index_model()


def test_the_site_made_photos_are_neither_kept_nor_counted_as_shoppers_searches(relevance_shop, settings):
    settings.SEARCH_KEEP_QUERY_PHOTOS_DAYS = 7
    before = metrics.SEARCHES.labels("ok", "")._value.get()

    run = run_now(photos=50, kinds=["reshot"])

    assert run.status == "succeeded" and run.done == len(RELEVANCE_SHOP)
    assert not (settings.MEDIA_ROOT / "queries").exists()
    assert metrics.SEARCHES.labels("ok", "")._value.get() == before
    with relevance_shop["cup"].images.get().image.open("rb") as photo:
        photo_search(PhotoSource(data=photo.read()))
    assert metrics.SEARCHES.labels("ok", "")._value.get() == before + 1  # a shopper's search still is
    assert len(list((settings.MEDIA_ROOT / "queries").rglob("*.jpg"))) == 1


def test_a_sample_is_seeded_and_says_so(relevance_shop):
    run = run_now(photos=3, kinds=["reshot"], seed=9)
    same = run_now(photos=3, kinds=["reshot"], seed=9)

    assert len(run.image_ids) == 3 and run.catalog_photos == len(RELEVANCE_SHOP)
    assert run.image_ids == same.image_ids and run.total == 3
    assert any(
        "3 of the 7 photos of active products, sampled with seed 9" in line for line in relevance_method(run)
    )


def test_without_scene_photos_the_scenes_are_drawn_and_the_report_says_so(relevance_shop, settings):
    settings.SEARCH_RELEVANCE_SCENES_DIR = ""
    run = run_now(photos=2, kinds=["scene"])

    assert run.status == "succeeded" and run.scenes.startswith("generated clutter")
    assert "Scenes: generated clutter (no scene photos configured)." in relevance_method(run)


def test_real_scene_photos_are_used_by_default_and_a_missing_folder_is_refused(
    relevance_shop, settings, tmp_path
):
    run = run_now(photos=2, kinds=["scene"])
    assert run.scenes.startswith("8 real photos from ") and run.scenes.endswith("search/relevance/scenes")

    settings.SEARCH_RELEVANCE_SCENES_DIR = str(tmp_path / "nowhere")
    with pytest.raises(services.RelevanceRunRefused, match="nowhere does not exist"):
        services.relevance_run_request(enqueue=False)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.jpg").write_text("not a photo")
    settings.SEARCH_RELEVANCE_SCENES_DIR = str(tmp_path / "empty")
    with pytest.raises(services.RelevanceRunRefused, match="holds no readable photo"):
        services.relevance_run_request(enqueue=False)
    assert RelevanceRun.objects.filter(status="queued").count() == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"photos": 0}, "between 1 and 5000, not 0"),
        ({"photos": 5001}, "between 1 and 5000"),
        ({"seed": -1}, "seed must be between 0"),
        ({"kinds": ["reshot", "sketch"]}, r"Unknown variant kind\(s\) sketch"),
        ({"kinds": []}, "none given"),
    ],
)
def test_bad_options_are_refused_with_a_message(options, message):
    with pytest.raises(services.RelevanceRunRefused, match=message):
        services.relevance_run_request(enqueue=False, **options)
    assert not RelevanceRun.objects.exists()


def test_one_self_test_at_a_time_and_a_lost_one_is_failed(relevance_shop):
    queued = services.relevance_run_request(enqueue=False, photos=2)
    with pytest.raises(services.RelevanceRunRefused, match=f"Self-test #{queued.pk} is queued"):
        services.relevance_run_request(enqueue=False)

    # Its worker died: no heartbeat for longer than the lease. The next request fails it, then starts.
    long_ago = timezone.now() - timedelta(hours=3)
    RelevanceRun.objects.filter(pk=queued.pk).update(
        status="running", heartbeat_at=long_ago, lease_owner="x:1:a"
    )
    fresh = services.relevance_run_request(enqueue=False, photos=2)

    queued.refresh_from_db()
    assert queued.status == "failed" and "lost lease" in queued.error
    assert fresh.status == "queued"


def test_cancelling_a_queued_run_and_a_running_one(relevance_shop, monkeypatch):
    queued = services.relevance_run_request(enqueue=False, photos=2)
    assert services.relevance_run_cancel(run_id=queued.pk).status == "cancelled"
    assert services.relevance_run(run_id=queued.pk).done == 0  # a cancelled run never starts

    monkeypatch.setattr(
        "search.services.relevance_search.SAVE_EVERY_SECONDS", 0
    )  # check the flag every search
    run = services.relevance_run_request(enqueue=False, photos=50, kinds=["reshot"])
    cancel_after_two = lambda done, total: done == 2 and services.relevance_run_cancel(run_id=run.pk)  # noqa: E731
    run = services.relevance_run(run_id=run.pk, progress=cancel_after_two)

    assert run.status == "cancelled" and (run.done, run.total) == (2, len(RELEVANCE_SHOP))
    assert len(run.outcomes) == 2 and run.r_at_1 is not None  # the figures of what was searched
    assert f"Stopped early: the figures cover 2 of {len(RELEVANCE_SHOP)} searches." in relevance_method(run)


def test_an_interrupted_run_keeps_what_it_searched_and_stops(relevance_shop):
    run = services.relevance_run_request(enqueue=False, photos=50, kinds=["reshot"])

    def interrupt(done, total):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        services.relevance_run(run_id=run.pk, progress=interrupt)

    run.refresh_from_db()
    assert (run.status, run.done, len(run.outcomes), run.error) == ("cancelled", 3, 3, "Interrupted.")


def test_a_failure_is_recorded_with_its_reason(relevance_shop, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr("search.services.relevance_search.photo_search", broken)
    run = run_now(photos=2)

    assert run.status == "failed" and run.error == "OSError: disk gone" and run.r_at_1 is None


def test_an_empty_catalog_is_a_failure_that_says_why():
    run = run_now(photos=2)

    assert (run.status, run.error, run.r_at_1) == (
        "failed",
        "Nothing to test: no active product has a photo.",
        None,
    )


def test_the_task_is_thin_it_passes_the_id_to_the_service(monkeypatch):
    calls = []

    class Done:
        status = "succeeded"

    monkeypatch.setattr(services, "relevance_run", lambda **kwargs: calls.append(kwargs) or Done())
    assert tasks.relevance_run(41) == "succeeded" and calls == [{"run_id": 41}]
    monkeypatch.setattr(services, "relevance_run", lambda **kwargs: None)
    assert tasks.relevance_run(42) == "gone"


def test_a_request_enqueues_the_task_after_commit(
    relevance_shop, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr("search.tasks.relevance_run.delay", lambda run_id: sent.append(run_id))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = services.relevance_run_request(photos=2)
    assert sent == []  # nothing before the commit
    for callback in callbacks:
        callback()
    assert sent == [run.pk]
