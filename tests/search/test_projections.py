"""Switching the site's model to a catalog-adapted projection and back (search.services.projections) on
the seven-product relevance shop, with the real model: the fingerprint change, the background re-embed
while the published index keeps answering, the query path at the projected width, the trial self-test,
and refusals. The projections are trained for 3 epochs on 5 products: plumbing, never quality; where a
test needs a "better" one, it says it takes the verdict as better."""

import numpy as np
import pytest

from search import services
from search.embedder import current_embedder
from search.models import AdaptedProjection, ImageEmbedding, IndexBuild, RelevanceRun
from search.services import PhotoSource, photo_search
from search.services.adapt import adapt_features
from search.services.projections import ProjectionRefused, projection_stop, projection_use
from search.services.ranking import Ranker
from search.services.state import vectors_from_rows
from tests.search.projection_helpers import train, trial

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def search_vectors(monkeypatch, data: bytes):
    """Searches like a shopper and returns the result and the widths of the vectors ranked."""
    widths = []
    original = Ranker.hits

    def spy(self, vectors, **kwargs):
        widths.append(np.asarray(vectors).shape[1])
        return original(self, vectors, **kwargs)

    monkeypatch.setattr(Ranker, "hits", spy)
    return photo_search(PhotoSource(data=data), k=3), widths


def test_the_trial_searches_the_held_out_products_with_the_projection_and_the_same_variants(
    relevance_shop, var_dir, fresh_embedder
):
    row = train(better=True)
    backbone = current_embedder().fingerprint

    before, after = trial(row)

    held_out = set(row.held_out_product_ids)
    assert len(held_out) == 2 and after.product_ids == before.product_ids == sorted(held_out)
    photos = {image.pk: product.pk for product in relevance_shop.values() for image in product.images.all()}
    assert {photos[i] for i in after.image_ids} == held_out  # training never saw these products
    assert after.fingerprint.startswith(backbone + "+p") and before.fingerprint == backbone
    assert after.variant_set == before.variant_set and after.total == before.total == 2
    assert after.not_searchable == 0  # the catalog's projected vectors were stored first
    projected = ImageEmbedding.objects.filter(fingerprint=after.fingerprint, status="done")
    assert projected.count() == len(relevance_shop) and set(projected.values_list("dim", flat=True)) == {16}
    assert current_embedder().fingerprint == backbone  # a trial switches nothing


def test_switching_queues_the_reembed_and_the_published_index_keeps_answering(
    better, relevance_shop, photo_bytes, monkeypatch, django_capture_on_commit_callbacks
):
    backbone = current_embedder().fingerprint
    builds = IndexBuild.objects.count()

    with django_capture_on_commit_callbacks() as sent:  # the worker's task is sent, not run
        projection, build = projection_use(projection_id=better.pk)

    assert projection.in_use and build.status == "queued" and IndexBuild.objects.count() == builds + 1
    assert sum("index_build_run" in repr(callback) for callback in sent) == 1  # the worker's task
    model = current_embedder()
    assert model.fingerprint == f"{backbone}+p{better.fingerprint[:16]}" and model.dim == 16
    # Meanwhile the published index (the backbone's) answers, with the backbone's query vectors.
    result, widths = search_vectors(monkeypatch, photo_bytes("cup.webp"))
    assert result.model.fingerprint == backbone and result.hits[0].product == relevance_shop["cup"]
    assert set(widths) == {1280}

    # Forget the vectors the trial projected, so that the build has the whole catalog to re-embed; the
    # network may run only for the query and object boxes, never for a catalog photo.
    ImageEmbedding.objects.filter(fingerprint=model.fingerprint).delete()
    network_rows = []
    through = model.backbone.embed_tensor
    monkeypatch.setattr(model.backbone, "embed_tensor", lambda b: network_rows.append(len(b)) or through(b))

    done = services.index_build_run(build_id=build.pk)  # the worker's job

    assert done.status == "succeeded", done.error
    assert network_rows == [] and done.vectors == len(relevance_shop)
    assert done.fingerprint == model.fingerprint
    result, widths = search_vectors(monkeypatch, photo_bytes("cup.webp"))
    assert result.model.fingerprint == model.fingerprint and result.hits[0].product == relevance_shop["cup"]
    assert len(widths) >= 1 and set(widths) == {16}  # the whole photo and each object box, projected
    # The catalog was re-embedded by projecting the stored backbone vectors: the very same numbers.
    image = relevance_shop["cup"].images.get()
    stored = {e.fingerprint: e.vector for e in ImageEmbedding.objects.filter(image=image, status="done")}
    expected = model.projection.project(vectors_from_rows([stored[backbone]], 1280))
    assert np.allclose(vectors_from_rows([stored[model.fingerprint]], 16), expected, atol=1e-6)


def test_back_to_the_backbone(better, relevance_shop, django_capture_on_commit_callbacks):
    backbone = current_embedder().fingerprint
    projection_use(projection_id=better.pk)
    assert current_embedder().fingerprint != backbone

    with django_capture_on_commit_callbacks():
        projection, build = projection_stop()

    assert not projection.in_use and build.status == "queued"
    assert current_embedder().fingerprint == backbone and current_embedder().dim == 1280
    with pytest.raises(ProjectionRefused, match="No projection is in use"):
        projection_stop()


def test_a_projection_that_is_not_better_is_refused_and_nothing_switches(
    relevance_shop, var_dir, fresh_embedder
):
    row = train(better=False)
    backbone = current_embedder().fingerprint
    builds = IndexBuild.objects.count()

    with pytest.raises(ProjectionRefused, match="is not better on the held-out products: the current model"):
        projection_use(projection_id=row.pk)

    assert not AdaptedProjection.objects.filter(in_use=True).exists()
    assert current_embedder().fingerprint == backbone and IndexBuild.objects.count() == builds


def test_a_better_projection_needs_its_self_test_first_and_a_worse_one_is_refused(
    relevance_shop, var_dir, fresh_embedder
):
    row = train(better=True)
    with pytest.raises(ProjectionRefused, match="Run its self-test first"):
        projection_use(projection_id=row.pk)
    before, after = trial(row)
    # The self-test's figures are the service's own; a trial that came out lower is refused.
    RelevanceRun.objects.filter(pk=after.pk).update(r_at_1=max(0.0, before.r_at_1 - 0.5))
    with pytest.raises(ProjectionRefused, match="is not better in its self-test"):
        projection_use(projection_id=row.pk)
    assert not AdaptedProjection.objects.filter(in_use=True).exists()
    with pytest.raises(ProjectionRefused, match="There is no projection #999"):
        projection_use(projection_id=999)


def test_confirmed_feedback_pairs_are_training_rows_and_change_the_data_version(relevance_shop, var_dir):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from search.models import SearchFeedback
    from search.services.adapt import FEEDBACK
    from tests.factories import PHOTOS_DIR

    without = adapt_features(variants=1, seed=5)
    cup = relevance_shop["cup"]
    name = default_storage.save(
        "feedback/ab/shopper.jpg", ContentFile((PHOTOS_DIR / "cup.webp").read_bytes())
    )
    values = {"rank": 2, "score": 0.8, "crop": [0.0, 0.0, 1.0, 1.0], "fingerprint": "fp", "photo": name}
    SearchFeedback.objects.create(
        product=cup, verdict="this_one", query_key="k", photo_sha256="a" * 64, review="confirmed", **values
    )

    data = adapt_features(variants=1, seed=5)

    assert data.version != without.version and not data.cached
    rows = data.kinds == FEEDBACK
    assert rows.sum() == 1 and data.product_ids[rows][0] == cup.pk and data.image_ids[rows][0] < 0
    assert data.category_ids[rows][0] == cup.category_id
