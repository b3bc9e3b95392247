"""AdaptConfig's fields added after the first slice: projections saved before keep their fingerprint and
load, and keep_backbone keeps the backbone's own vector inside the projection. No Django, no model."""

import json

import numpy as np
import pytest

from search.embedding import adapt
from search.embedding.adapt import AdaptConfig, AdaptError, Projection, projection_load, projection_train

from .test_adapt_engine import PER_CLASS, nearest_mean_accuracy, synthetic

# The first slice's defaults, written out: today's defaults may differ.
FIRST_SLICE = {
    "out_dim": 256,
    "temperature": 0.2,
    "category_weight": 0.3,
    "learning_rate": 1e-2,
    "weight_decay": 1e-4,
    "batch_size": 256,
    "max_epochs": 100,
    "patience": 10,
    "validation_share": 0.15,
    "seed": 2026,
}
WEIGHT = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
MEAN = np.array([0.5, -0.25, 0.0, 1.0], np.float32)
# Computed by the first slice's code (commit ceef65a):
# Projection(WEIGHT, MEAN, AdaptConfig(), "first-slice").fingerprint
FIRST_SLICE_FINGERPRINT = "e9282a617b440a74943f658f6bd96178dd4a8ccbb477f3277f39dc6f4ccbfa38"


def test_a_first_slice_projection_keeps_its_fingerprint():
    projection = Projection(WEIGHT, MEAN, AdaptConfig.from_record(FIRST_SLICE), "first-slice")

    assert projection.config.keep_backbone == 0.0
    assert projection.fingerprint == FIRST_SLICE_FINGERPRINT


def test_a_file_saved_by_the_first_slice_loads_with_its_own_settings(tmp_path):
    """Its metadata has no keep_backbone: it loads as trained (nothing kept), whatever today's default."""
    path = tmp_path / "first-slice.npz"
    meta = {
        "format": 1,
        "config": FIRST_SLICE,
        "data_version": "first-slice",
        "trained": {"epochs": 3},
        "fingerprint": FIRST_SLICE_FINGERPRINT,
    }
    with open(path, "wb") as handle:
        np.savez(handle, weight=WEIGHT, mean=MEAN, meta=json.dumps(meta))

    loaded = projection_load(path)

    assert loaded.config == AdaptConfig.from_record(FIRST_SLICE)
    assert loaded.config.keep_backbone == 0.0 and loaded.fingerprint == FIRST_SLICE_FINGERPRINT


def test_keep_backbone_is_part_of_the_fingerprint_and_survives_saving(tmp_path):
    kept = AdaptConfig.from_record({**FIRST_SLICE, "keep_backbone": 1.5})
    projection = Projection(WEIGHT, MEAN, kept, "first-slice")
    projection.save(tmp_path / "kept.npz")

    assert projection.fingerprint != FIRST_SLICE_FINGERPRINT
    assert projection_load(tmp_path / "kept.npz").config.keep_backbone == 1.5


def test_keep_backbone_puts_the_backbone_vector_in_front_of_the_learnt_block():
    x, labels = synthetic()
    config = AdaptConfig.principal(out_dim=4, max_epochs=3, keep_backbone=2.0, seed=3)
    projection = projection_train(x, labels, labels % 3, config=config)
    learnt = projection_train(
        x, labels, labels % 3, config=AdaptConfig.principal(out_dim=4, max_epochs=3, seed=3)
    )

    d = x.shape[1]
    assert projection.in_dim == d and projection.out_dim == d + 4
    scale = projection.trained["backbone_scale"]
    np.testing.assert_allclose(projection.weight[:, :d], scale * np.eye(d), atol=1e-7)
    np.testing.assert_array_equal(projection.weight[:, d:], learnt.weight)  # the same learnt block
    # The two blocks' typical lengths stand in the ratio asked for.
    centred = x - projection.mean
    ratio = np.median(np.linalg.norm(centred @ projection.weight[:, :d], axis=1)) / np.median(
        np.linalg.norm(centred @ projection.weight[:, d:], axis=1)
    )
    assert ratio == pytest.approx(2.0, rel=0.05)


def test_a_large_keep_backbone_ranks_as_the_centred_backbone_does():
    x, labels = synthetic()
    projection = projection_train(
        x, labels, labels % 3, config=AdaptConfig.principal(out_dim=4, max_epochs=3, keep_backbone=1000.0)
    )
    centred = x - projection.mean
    backbone = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    z = projection.project(x)

    np.testing.assert_array_equal(
        np.argsort(-(z @ z[:10].T), axis=0)[:5], np.argsort(-(backbone @ backbone[:10].T), axis=0)[:5]
    )


def test_a_negative_keep_backbone_is_refused():
    with pytest.raises(AdaptError, match="keep_backbone"):
        AdaptConfig(keep_backbone=-1.0).check()


def test_the_identity_start_learns_a_full_map_from_the_backbone_itself():
    x, labels = synthetic()
    test = np.arange(len(labels)) % PER_CLASS >= 14
    config = AdaptConfig(
        start="identity", identity_pull=0.0, learning_rate=3e-2, temperature=0.3, batch_size=64, seed=3
    )
    projection = projection_train(x[~test], labels[~test], labels[~test] % 3, config=config)

    assert projection.in_dim == projection.out_dim == x.shape[1]
    # The backbone itself (the start) scores 0.125 here, chance 1/12.
    assert nearest_mean_accuracy(projection, x, labels, test) >= 0.75


def test_before_any_step_the_identity_start_ranks_as_the_centred_backbone(monkeypatch):
    monkeypatch.setattr(adapt, "_cosine_softmax", lambda z, heads, labels, t: (z.sum() + heads.sum()) * 0.0)
    x, labels = synthetic()
    projection = projection_train(x, labels, labels % 3, config=AdaptConfig(start="identity", max_epochs=2))

    np.testing.assert_allclose(projection.weight, np.eye(x.shape[1]), atol=1e-6)


def test_identity_pull_keeps_the_map_nearer_the_identity():
    x, labels = synthetic()

    def distance(pull: float) -> float:
        config = AdaptConfig(start="identity", max_epochs=5, learning_rate=3e-3, identity_pull=pull, seed=3)
        weight = projection_train(x, labels, labels % 3, config=config).weight
        return float(np.linalg.norm(weight - np.eye(x.shape[1])))

    assert distance(1.0) < 0.5 * distance(0.0)


def test_an_unknown_start_is_refused():
    with pytest.raises(AdaptError, match="'principal' or 'identity'"):
        AdaptConfig(start="random").check()
