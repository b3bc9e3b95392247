"""The self-test's Django-free engine: the figures from hand-made outcomes, and the variants."""

import io
import random

import numpy as np
import pytest
from PIL import Image

from catalog.imaging import load_image
from search.relevance.figures import Outcome, figures, figures_by_kind, hardest
from search.relevance.variants import (
    Scenes,
    ScenesUnavailable,
    scenes_load,
    variant_make,
    variant_rng,
    white_background_mask,
)
from tests.factories import PHOTOS_DIR
from tests.test_architecture import offenders


def outcome(product, kind, rank, top, same, shown=10, image=None, top_image=None) -> Outcome:
    return Outcome(
        image_id=image or product * 10,
        product_id=product,
        kind=kind,
        rank=rank,
        top_product_id=top,
        top_image_id=top_image or (top * 10 if top else None),
        top_score=0.5,
        same_category=same,
        shown=shown,
    )


OUTCOMES = [
    outcome(1, "reshot", 1, top=1, same=4),
    outcome(1, "scene", 3, top=2, same=2),
    outcome(2, "reshot", None, top=3, same=0, shown=4),  # a search with only 4 results shown
    outcome(3, "reshot", 1, top=3, same=5, shown=5),
    outcome(4, "reshot", 2, top=1, same=None),  # product without a category
]


def test_figures_count_first_places_places_in_ten_and_the_category_share():
    result = figures(OUTCOMES)

    assert (result.queries, result.r_at_1, result.r_at_10) == (5, 2 / 5, 4 / 5)
    # Over the four queries with a category: 4/10, 2/10, 0/4 and 5/5.
    assert result.category_p_at_10 == pytest.approx((0.4 + 0.2 + 0.0 + 1.0) / 4)
    assert result.category_queries == 4


def test_figures_by_kind_and_of_nothing():
    by_kind = figures_by_kind(OUTCOMES)

    assert set(by_kind) == {"reshot", "scene"}
    assert (by_kind["reshot"].queries, by_kind["reshot"].r_at_1, by_kind["reshot"].r_at_10) == (4, 0.5, 0.75)
    assert (by_kind["scene"].r_at_1, by_kind["scene"].r_at_10, by_kind["scene"].category_p_at_10) == (
        0,
        1,
        0.2,
    )
    assert figures([]).r_at_1 is None and figures([outcome(4, "reshot", 1, 4, None)]).category_p_at_10 is None


def test_the_hardest_products_come_first_with_what_they_were_taken_for():
    rows = hardest(OUTCOMES, limit=10)

    # Product 2: never first nor in the 10; 4: never first, in the 10; 1: first once in two. 3: always first.
    assert [row.product_id for row in rows] == [2, 4, 1]
    two, four, one = rows
    assert (two.found_first, two.found_in_10, two.confused_with, two.confused_count) == (0, 0, 3, 1)
    assert (four.confused_with, four.confused_image_id) == (1, 10)
    assert (one.queries, one.found_first, one.worst_kind, one.confused_with) == (2, 1, "scene", 2)
    assert [row.product_id for row in hardest(OUTCOMES, limit=2)] == [2, 4]


def test_the_most_frequent_confusion_is_named_and_a_miss_without_results_is_not_a_confusion():
    rows = hardest(
        [
            outcome(7, "reshot", 2, top=8, same=1),
            outcome(7, "scene", 3, top=9, same=1, image=71),
            outcome(7, "scene", None, top=9, same=1, image=72),
            outcome(5, "reshot", None, top=None, same=0, shown=0),
        ],
        limit=5,
    )
    assert [(row.product_id, row.confused_with, row.confused_count) for row in rows] == [
        (5, None, 0),
        (7, 9, 2),
    ]
    assert rows[1].worst_image_id == 72  # the variant that did not even reach the first 10


# --- variants ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hammer() -> Image.Image:
    return load_image((PHOTOS_DIR / "hammer1.webp").read_bytes(), max_pixels=10**8)


@pytest.fixture(scope="module")
def real_scenes() -> Scenes:
    from django.conf import settings

    return scenes_load(settings.SEARCH_RELEVANCE_SCENES_DIR)


@pytest.mark.parametrize("kind", ["reshot", "scene"])
def test_the_same_seed_and_photo_make_the_same_variant(hammer, real_scenes, kind):
    made = [variant_make(hammer, kind, variant_rng(seed, "abc", kind), real_scenes) for seed in (1, 1, 2)]

    assert made[0] == made[1] != made[2]
    assert variant_make(hammer, kind, variant_rng(1, "abd", kind), real_scenes) != made[0]  # other photo
    picture = Image.open(io.BytesIO(made[0]))
    assert picture.format == "JPEG" and picture.size != hammer.size


def test_a_scene_variant_pastes_the_thing_without_its_white_background():
    scissors = load_image((PHOTOS_DIR / "scissors1.webp").read_bytes(), max_pixels=10**8)  # on white
    dark = Scenes((Image.new("RGB", (400, 300), (30, 60, 30)),), "one dark wall", "test")

    for seed in range(3):
        data = variant_make(scissors, "scene", variant_rng(seed, "abc", "scene"), dark)
        scene = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)
        changed = np.abs(scene - [30, 60, 30]).max(axis=2) > 40
        rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
        box = (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1)
        # A pasted rectangle (white card and all) would fill its box; the cut-out scissors fill a third.
        assert changed.sum() / box < 0.5
        assert changed.mean() > 0.01  # the scissors are there


def test_the_white_background_mask_keeps_the_thing_only():
    scissors = load_image((PHOTOS_DIR / "scissors1.webp").read_bytes(), max_pixels=10**8)
    mask = np.asarray(white_background_mask(scissors))

    assert mask[0].max() == 0 and mask[-1].max() == 0 and mask[:, 0].max() == 0  # the white border
    assert 0.1 < (mask > 128).mean() < 0.5  # the scissors are kept
    on_a_table = Image.new("RGB", (100, 80), (120, 90, 60))
    assert np.asarray(white_background_mask(on_a_table)).min() == 255  # nothing to cut away


def test_scenes_real_drawn_or_refused(tmp_path, real_scenes):
    assert len(real_scenes.pictures) == 8 and real_scenes.label.startswith("8 real photos from ")
    drawn = scenes_load("")
    assert drawn.pictures == () and drawn.label == "generated clutter (no scene photos configured)"
    made = variant_make(Image.new("RGB", (200, 200), "red"), "scene", random.Random(1), drawn)
    assert Image.open(io.BytesIO(made)).size == (800, 600)
    with pytest.raises(ScenesUnavailable, match="does not exist"):
        scenes_load(tmp_path / "missing")
    (tmp_path / "readme.txt").write_text("no photos here")
    with pytest.raises(ScenesUnavailable, match="holds no readable photo"):
        scenes_load(tmp_path)
    with pytest.raises(ValueError, match="Unknown variant kind 'sketch'"):
        variant_make(Image.new("RGB", (10, 10)), "sketch", random.Random(1), drawn)


def test_the_engine_imports_nothing_of_django():
    assert offenders("search/relevance", ("django", "rest_framework", "celery", "search.models")) == []
