"""One relevance self-test's searches (search.services.relevance runs it): the seeded sample of photos,
their shopper-like variants, each searched through the shoppers' query service, and the progress and
cancel flag saved on the way."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable

from django.conf import settings

from catalog.imaging import load_image
from catalog.models import ProductImage
from search.models import ImageEmbedding, RelevanceRun
from search.relevance.figures import TOP_K, Outcome
from search.relevance.variants import (
    RECIPE_VERSION,
    Scenes,
    scenes_load,
    variant_make,
    variant_rng,
    variant_thumbnail,
)
from shop_search.leases import Lease
from shop_search.storage import STORAGE_ERRORS

from .projection_trial import trial_model
from .query import PhotoSource, photo_search
from .relevance_results import outcome_of
from .state import model_warning, query_embedder, serving_index

logger = logging.getLogger(__name__)

SAVE_EVERY_SECONDS = 1.0  # progress and the cancel flag, at most this often
Progress = Callable[[int, int], None]  # (variants searched, variants in the run)


class NothingToTest(Exception):
    """The catalog has no photo of an active product."""


class ModelChanged(Exception):
    """Another model started answering searches during the run (a new index was published)."""


def relevance_variants_search(
    run: RelevanceRun,
    outcomes: list[Outcome],
    thumbnails: dict[tuple[int, str], str],
    lease: Lease,
    progress: Progress | None,
) -> bool:
    """Searches every variant of the run, appending to ``outcomes`` and ``thumbnails`` (kept by the
    caller if it stops on the way); True when cancelled on the way."""
    scenes = scenes_load(settings.SEARCH_RELEVANCE_SCENES_DIR)
    images, catalog_photos = _sample(run)
    if not images:
        raise NothingToTest("Nothing to test: no active product has a photo.")
    model = trial_model(run) if run.projection_id else query_embedder(serving_index())
    searchable = set(
        ImageEmbedding.objects.filter(
            image_id__in=[image.pk for image in images],
            fingerprint=model.fingerprint,
            status=ImageEmbedding.Status.DONE,
        ).values_list("image_id", flat=True)
    )
    total = len(images) * len(run.kinds)
    RelevanceRun.objects.filter(pk=run.pk).update(
        fingerprint=model.fingerprint,
        model_name=model.name,
        model_warning=model_warning(model),
        scenes=scenes.label,
        variant_set=_variant_set(run, images, scenes),
        catalog_photos=catalog_photos,
        image_ids=[image.pk for image in images],
        not_searchable=sum(image.pk not in searchable for image in images),
        total=total,
    )
    saved_at = time.monotonic()
    trial = model if run.projection_id else None
    for image in images:
        picture = _picture(image)
        if picture is None:
            RelevanceRun.objects.filter(pk=run.pk).update(unreadable=run.unreadable + 1)
            run.unreadable += 1
            total -= len(run.kinds)
            continue
        for kind in run.kinds:
            data = variant_make(picture, kind, variant_rng(run.seed, image.sha256, kind), scenes)
            result = photo_search(PhotoSource(data=data), k=TOP_K, shopper=False, model=trial or None)
            if result.model.fingerprint != model.fingerprint:
                raise ModelChanged("Another model started answering searches during the run: run it again.")
            outcomes.append(outcome_of(image, kind, result.hits))
            if outcomes[-1].rank != 1:
                thumbnails[(image.pk, kind)] = variant_thumbnail(data)
            if progress:
                progress(len(outcomes), total)
            if time.monotonic() - saved_at >= SAVE_EVERY_SECONDS or len(outcomes) == total:
                saved_at = time.monotonic()
                lease.check()
                RelevanceRun.objects.filter(pk=run.pk).update(done=len(outcomes), total=total)
                if RelevanceRun.objects.filter(pk=run.pk, cancel_requested=True).exists():
                    return True
    return False


def _sample(run: RelevanceRun) -> tuple[list[ProductImage], int]:
    """The run's photos (seeded: the same seed and catalog give the same photos) and the catalog size."""
    photos = ProductImage.objects.filter(product__is_active=True)
    if run.product_ids:
        photos = photos.filter(product_id__in=run.product_ids)
    ids = list(photos.order_by("pk").values_list("pk", flat=True))
    chosen = (
        ids if len(ids) <= run.photos_requested else random.Random(run.seed).sample(ids, run.photos_requested)
    )
    images = ProductImage.objects.filter(pk__in=chosen).select_related("product").order_by("pk")
    return list(images), len(ids)


def _variant_set(run: RelevanceRun, images: list[ProductImage], scenes: Scenes) -> str:
    """Equal for two runs exactly when they searched identical variants."""
    key = [RECIPE_VERSION, run.seed, list(run.kinds), [[i.pk, i.sha256] for i in images], scenes.signature]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()


def _picture(image: ProductImage):
    try:
        with image.image.storage.open(image.image.name, "rb") as handle:
            return load_image(handle.read(), max_pixels=settings.CATALOG_IMAGE_MAX_PIXELS)
    except (*STORAGE_ERRORS, ValueError):
        logger.warning("Relevance self-test: photo %s could not be read; left out", image.pk, exc_info=True)
        return None
