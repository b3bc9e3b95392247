"""Sampled product softmax for large catalogs (AdaptConfig.sampled_products): a step's softmax runs over
its own products plus a random draw of the others; a catalog with fewer products trains exactly as
before. No Django, no model, synthetic features."""

import numpy as np
import pytest

from search.embedding import adapt
from search.embedding.adapt import AdaptConfig, AdaptError, projection_train

from .test_adapt_config import FIRST_SLICE
from .test_adapt_engine import CLASSES, PER_CLASS, nearest_mean_accuracy, synthetic


def test_the_draw_keeps_every_product_of_the_step_and_renumbers_its_labels():
    labels = np.array([7, 3, 7, 19, 3])
    chosen, renumbered = adapt._sampled_classes(labels, 8, 40, np.random.default_rng(1))

    assert len(chosen) == 8 and len(set(chosen.tolist())) == 8
    assert {3, 7, 19} <= set(chosen.tolist())
    assert np.array_equal(chosen[renumbered], labels)
    assert np.all(np.diff(chosen) > 0)


def test_a_step_with_more_products_than_the_draw_keeps_them_all():
    labels = np.arange(10)
    chosen, renumbered = adapt._sampled_classes(labels, 4, 40, np.random.default_rng(1))

    assert np.array_equal(chosen, labels) and np.array_equal(chosen[renumbered], labels)


def test_the_others_are_drawn_at_random_not_always_the_same():
    rng = np.random.default_rng(5)
    draws = {tuple(adapt._sampled_classes(np.array([0]), 4, 100, rng)[0]) for _ in range(10)}

    assert len(draws) > 5


def test_a_catalog_with_fewer_products_than_the_draw_trains_exactly_as_without_sampling():
    x, labels = synthetic()
    base = dict(start="identity", max_epochs=4, learning_rate=3e-3, batch_size=64, seed=3)
    sampled = projection_train(x, labels, labels % 3, config=AdaptConfig(**base, sampled_products=CLASSES))
    full = projection_train(x, labels, labels % 3, config=AdaptConfig(**base, sampled_products=0))

    assert np.array_equal(sampled.weight, full.weight)
    assert sampled.trained["sampled_products"] == 0


def test_a_catalog_with_more_products_than_the_draw_samples_and_still_learns(monkeypatch):
    x, labels = synthetic()
    test = np.arange(len(labels)) % PER_CLASS >= 14
    base = dict(
        start="identity", identity_pull=0.0, learning_rate=1e-2, temperature=0.3, batch_size=4, seed=3
    )
    seen = []
    softmax = adapt._cosine_softmax

    def counting(z, heads, labels, temperature):
        seen.append(len(heads))
        return softmax(z, heads, labels, temperature)

    monkeypatch.setattr(adapt, "_cosine_softmax", counting)
    projection = projection_train(
        x[~test], labels[~test], labels[~test] % 3, config=AdaptConfig(**base, sampled_products=6)
    )

    assert projection.trained["sampled_products"] == 6
    # 3 categories; 6 of the 12 products in every step (4 rows: at most 4 of their own); all 12 in the
    # epoch's validation loss.
    assert set(seen) == {3, 6, CLASSES}
    # The backbone itself scores 0.125 here, chance 1/12 (test_adapt_config's identity-start test).
    assert nearest_mean_accuracy(projection, x, labels, test) >= 0.75


def test_sampled_training_is_deterministic():
    x, labels = synthetic()
    config = AdaptConfig(start="identity", max_epochs=3, learning_rate=3e-3, batch_size=8, sampled_products=3)
    first = projection_train(x, labels, labels % 3, config=config)
    again = projection_train(x, labels, labels % 3, config=config)

    assert np.array_equal(first.weight, again.weight) and first.fingerprint == again.fingerprint


def test_a_projection_saved_before_sampling_existed_keeps_its_settings_and_fingerprint():
    """Its record has no sampled_products: it was trained over all products, and loads so."""
    # What AdaptConfig().record() saved before sampling existed (stop 18's default).
    earlier = {**FIRST_SLICE, "learning_rate": 1e-4, "start": "identity", "identity_pull": 3e-3}
    config = AdaptConfig.from_record(earlier)

    assert config.sampled_products == 0
    assert config.record() == earlier


@pytest.mark.parametrize("value", [-1, 1])
def test_a_draw_of_fewer_than_two_products_is_refused(value):
    with pytest.raises(AdaptError, match="sampled_products"):
        AdaptConfig(sampled_products=value).check()


def test_only_a_sampling_catalog_uses_the_fused_update_and_it_learns_the_same_map(monkeypatch):
    """The catalogs that sample (the long trainings) update in one fused AdamW pass; the others keep the
    single-tensor update they were measured with. Both learn the same map, to rounding."""
    x, labels = synthetic()
    adamw, fused = adapt.torch.optim.AdamW, []

    def recording(params, **options):
        fused.append(options.get("fused"))
        return adamw(params, **options)

    monkeypatch.setattr(adapt.torch.optim, "AdamW", recording)
    base = dict(start="identity", max_epochs=3, learning_rate=3e-3, batch_size=8, seed=3)
    sampled = projection_train(x, labels, labels % 3, config=AdaptConfig(**base, sampled_products=3))
    projection_train(x, labels, labels % 3, config=AdaptConfig(**base, sampled_products=CLASSES))
    assert fused == [True, None]

    monkeypatch.setattr(
        adapt.torch.optim, "AdamW", lambda params, **options: adamw(params, **options | {"fused": None})
    )
    single = projection_train(x, labels, labels % 3, config=AdaptConfig(**base, sampled_products=3))
    np.testing.assert_allclose(sampled.weight, single.weight, atol=1e-5)
