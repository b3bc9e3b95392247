"""The projected model (search.embedding.projected): backbone -> projection -> L2 norm for every vector,
a fingerprint that carries the projection's weights and training-data version, and the manifest spec
that loads it again. The projections here are seeded random maps: plumbing, not quality."""

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from search.embedder import backbone_embedder
from search.embedding import WeightsError, build_embedder_from_spec, embedder_spec
from search.embedding.adapt import AdaptConfig, Projection, projection_loads
from search.embedding.projected import ProjectedEmbedder
from tests.factories import PHOTOS_DIR


def random_projection(
    in_dim: int, out_dim: int = 16, *, seed: int = 0, data_version: str = "v1"
) -> Projection:
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((in_dim, out_dim)).astype(np.float32)
    return Projection(
        weight, np.zeros(in_dim, np.float32), AdaptConfig.principal(out_dim=out_dim), data_version
    )


def photos() -> list[Image.Image]:
    base = backbone_embedder()
    return [
        base.load((PHOTOS_DIR / name).read_bytes(), max_pixels=10**8) for name in ("cup.webp", "pan.webp")
    ]


def test_the_fingerprint_carries_the_projection_its_weights_and_its_data_version():
    base = backbone_embedder()
    projection = random_projection(base.dim)
    projected = ProjectedEmbedder(base, projection)

    assert (
        projected.fingerprint.startswith(base.fingerprint + "+p")
        and projected.fingerprint != base.fingerprint
    )
    assert ProjectedEmbedder(base, random_projection(base.dim)).fingerprint == projected.fingerprint
    other_weights = ProjectedEmbedder(base, random_projection(base.dim, seed=1))
    other_data = ProjectedEmbedder(base, random_projection(base.dim, data_version="v2"))
    assert len({projected.fingerprint, other_weights.fingerprint, other_data.fingerprint}) == 3
    assert projected.backbone is base and projected.model is base.model  # the weights are not loaded twice


def test_every_vector_is_the_projected_backbone_vector_at_the_projected_width():
    base = backbone_embedder()
    projection = random_projection(base.dim, out_dim=16)
    projected = ProjectedEmbedder(base, projection)
    pictures = photos()

    vectors = projected.embed(pictures)

    assert vectors.shape == (2, 16) and projected.dim == 16
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors, projection.project(base.embed(pictures)), atol=1e-5)
    assert projected.embed_one(pictures[0]).shape == (16,)
    # The object finder's map stays the backbone's: it only places the boxes, whose crops are projected.
    assert projected.feature_map(pictures[0]).shape[0] == base.dim


def test_a_projection_for_another_backbone_is_refused():
    base = backbone_embedder()
    with pytest.raises(WeightsError, match="trained on another backbone"):
        ProjectedEmbedder(base, random_projection(base.dim + 1))


def test_the_manifest_spec_names_the_projection_and_loads_only_with_it():
    base = backbone_embedder()
    projection = random_projection(base.dim)
    projected = ProjectedEmbedder(base, projection)
    spec = embedder_spec(projected)

    assert spec["projection"] == projection.fingerprint and spec["fingerprint"] == projected.fingerprint
    assert embedder_spec(base)["projection"] == ""
    again = build_embedder_from_spec(spec, projection=projection_loads(projection.dumps()))
    assert again.fingerprint == projected.fingerprint and again.dim == 16
    with pytest.raises(WeightsError, match="not at hand"):
        build_embedder_from_spec(spec)
    with pytest.raises(WeightsError, match="not at hand"):
        build_embedder_from_spec(spec, projection=replace(projection, data_version="other"))
