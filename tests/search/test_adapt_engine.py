"""The catalog-adapted projection's engine (search.embedding.adapt) and the exact vector search the
comparison uses (search.relevance.vector_search): no Django, no model, synthetic features."""

import numpy as np
import pytest

from search.embedding import adapt
from search.embedding.adapt import AdaptConfig, AdaptError, product_split, projection_load, projection_train
from search.relevance.vector_search import outcomes_by_vectors

CLASSES, PER_CLASS, DIM = 12, 20, 32


def synthetic(seed: int = 0):
    """Classes told apart only on 4 quiet dimensions; 28 loud dimensions of noise carry most of the
    variance, so the principal directions the projection starts from miss the classes: it must learn."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.0, (CLASSES, 4))
    labels = np.repeat(np.arange(CLASSES), PER_CLASS)
    x = np.concatenate(
        [centres[labels] + rng.normal(0, 0.15, (len(labels), 4)), rng.normal(0, 3.0, (len(labels), DIM - 4))],
        axis=1,
    )
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # as the backbone's vectors are
    return x.astype(np.float32), labels


def nearest_mean_accuracy(projection, x, labels, test):
    z = projection.project(x)
    means = np.stack([z[~test & (labels == c)].mean(axis=0) for c in range(CLASSES)])
    return float(((z[test] @ means.T).argmax(axis=1) == labels[test]).mean())


SMALL = AdaptConfig.principal(
    out_dim=4, max_epochs=100, patience=10, learning_rate=3e-2, temperature=0.3, batch_size=64, seed=3
)


def test_the_projection_learns_classes_the_starting_directions_miss():
    x, labels = synthetic()
    test = np.arange(len(labels)) % PER_CLASS >= 14  # 6 unseen rows per class
    projection = projection_train(x[~test], labels[~test], labels[~test] % 3, config=SMALL)

    accuracy = nearest_mean_accuracy(projection, x, labels, test)
    assert accuracy >= 0.8, accuracy  # chance is 1/12
    assert projection.out_dim == 4 and projection.trained["epochs"] <= SMALL.max_epochs


def test_without_a_working_loss_the_same_set_stays_near_chance(monkeypatch):
    """The set is hard for the starting point: the accuracy above comes from training, not from PCA."""
    x, labels = synthetic()
    test = np.arange(len(labels)) % PER_CLASS >= 14
    monkeypatch.setattr(adapt, "_cosine_softmax", lambda z, heads, labels, t: (z.sum() + heads.sum()) * 0.0)
    projection = projection_train(x[~test], labels[~test], labels[~test] % 3, config=SMALL)

    assert nearest_mean_accuracy(projection, x, labels, test) < 0.4


def test_training_is_deterministic_and_the_fingerprint_follows_weights_config_and_data():
    x, labels = synthetic()
    config = AdaptConfig.principal(out_dim=4, max_epochs=5, seed=7)
    first = projection_train(x, labels, labels % 3, config=config, data_version="v1")
    again = projection_train(x, labels, labels % 3, config=config, data_version="v1")
    other_data = projection_train(x, labels, labels % 3, config=config, data_version="v2")
    other_seed = projection_train(
        x, labels, labels % 3, config=AdaptConfig.principal(out_dim=4, max_epochs=5, seed=8)
    )

    assert first.fingerprint == again.fingerprint and np.array_equal(first.weight, again.weight)
    assert other_data.fingerprint != first.fingerprint
    assert not np.array_equal(other_seed.weight, first.weight)


def test_save_and_load_keep_the_fingerprint_and_the_vectors(tmp_path):
    x, labels = synthetic()
    projection = projection_train(
        x, labels, labels % 3, config=AdaptConfig.principal(out_dim=4, max_epochs=3), data_version="d"
    )
    path = tmp_path / "p.npz"
    projection.save(path)

    loaded = projection_load(path)
    assert loaded.fingerprint == projection.fingerprint
    assert loaded.data_version == "d" and loaded.config == projection.config
    assert np.allclose(loaded.project(x), projection.project(x))
    assert np.allclose(np.linalg.norm(loaded.project(x), axis=1), 1.0, atol=1e-5)


def test_a_damaged_or_foreign_file_is_refused(tmp_path):
    x, labels = synthetic()
    projection = projection_train(
        x, labels, labels % 3, config=AdaptConfig.principal(out_dim=4, max_epochs=2)
    )
    projection.weight[0, 0] += 1.0  # changed after training: the saved fingerprint no longer matches
    meta_fingerprint = projection.fingerprint
    path = tmp_path / "p.npz"
    projection.save(path)
    data = dict(np.load(path))
    data["weight"] = data["weight"] * 2
    np.savez(tmp_path / "tampered.npz", **data)
    (tmp_path / "junk.npz").write_bytes(b"not a projection")

    assert projection_load(path).fingerprint == meta_fingerprint
    with pytest.raises(AdaptError, match="damaged"):
        projection_load(tmp_path / "tampered.npz")
    with pytest.raises(AdaptError, match="not a saved projection"):
        projection_load(tmp_path / "junk.npz")


def test_the_split_is_by_product_seeded_and_leaves_both_sides_something():
    products = np.repeat(np.arange(20), 5)
    held = product_split(products, held_out=0.3, seed=1)

    assert set(products[held]).isdisjoint(products[~held])
    assert len(set(products[held])) == 6
    assert np.array_equal(held, product_split(products, held_out=0.3, seed=1))
    assert not np.array_equal(held, product_split(products, held_out=0.3, seed=2))
    assert product_split(np.array([4, 4, 9]), held_out=0.9, seed=0).sum() in (1, 2)  # one product each side
    with pytest.raises(AdaptError, match="at least 2 products"):
        product_split(np.array([1, 1]), held_out=0.3, seed=0)


def test_early_stopping_watches_rows_it_does_not_train_on_even_with_few_rows_per_product():
    """A shop's product has one to three photos with two variants each: 15 % of its rows rounds to none,
    yet early stopping must still have held-out rows (else it watches the training loss and never stops)."""
    few = np.repeat(np.arange(200), 3)  # 200 products x (a photo + 2 variants)
    fit, check = adapt._validation_rows(few, 0.15, np.random.default_rng(0), 7)

    assert abs(len(check) - 0.15 * len(few)) <= 1
    assert np.array_equal(np.union1d(fit, check), np.arange(len(few))) and not np.intersect1d(fit, check).size
    assert set(few[fit]) == set(range(200))  # every product keeps a training row
    assert np.bincount(few[check]).max() == 1
    again = adapt._validation_rows(few, 0.15, np.random.default_rng(0), 7)[1]
    assert np.array_equal(check, again)


def test_products_with_enough_rows_are_split_per_product_as_before():
    many = np.repeat(np.arange(10), 20)
    rng = np.random.default_rng(5)
    expected = sorted(i for p in range(10) for i in rng.choice(np.flatnonzero(many == p), 3, replace=False))
    _, check = adapt._validation_rows(many, 0.15, np.random.default_rng(5), 7)

    assert check.tolist() == expected
    assert adapt._validation_rows(np.array([0, 1, 2]), 0.15, np.random.default_rng(0), 7)[1].size == 0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (AdaptConfig.principal(out_dim=64), "more dimensions"),
        (AdaptConfig.principal(out_dim=1), "at least 2 dimensions"),
        (AdaptConfig(max_epochs=0), "max_epochs"),
    ],
)
def test_bad_configs_are_refused_with_a_reason(config, message):
    x, labels = synthetic()
    with pytest.raises(AdaptError, match=message):
        projection_train(x, labels, labels, config=config)


def test_vector_search_ranks_products_by_their_best_photo():
    gallery = np.eye(4, dtype=np.float32)  # photos 10, 11 (product 1), 12 (product 2), 13 (product 3)
    query = np.array([[0.0, 0.6, 0.8, 0.0]], dtype=np.float32)  # nearest photo 12, then 11
    (outcome,) = outcomes_by_vectors(
        query, [11], [1], ["reshot"], gallery, [10, 11, 12, 13], [1, 1, 2, 3], {1: 5, 2: 5, 3: None}
    )
    assert (outcome.rank, outcome.top_product_id, outcome.top_image_id) == (2, 2, 12)
    assert (outcome.shown, outcome.same_category) == (3, 2)
