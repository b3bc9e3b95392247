"""Catalog-adapted projection, first slice: train one on some products and compare it with the backbone
on the others. Nothing here changes the model the site uses.

1. ``adapt_features``: every photo of an active product and ``variants`` shopper-like variants of it
   (search.relevance.variants, seeded per photo as in the self-test), and the shoppers' photos of the
   confirmed feedback pairs (search.selectors.confirmed_feedback_pairs: "this one" confirmed by staff)
   go through the backbone (without any projection in use) once; the features are cached under
   VAR_DIR/adapt/ keyed by everything they depend on, feedback included (the training-data version).
2. ``adapt_compare``: the products are split (seeded) into training and held-out products; the
   projection (search.embedding.adapt) is trained on the training products' photos and variants only;
   then the held-out products' variants are searched against the whole catalog's photos with the
   backbone's vectors and with the projected ones (exact cosine, whole photo: search.relevance.
   vector_search), and the self-test's figures compared. The projection is saved as a file only when
   it is better on the held-out products; ``adapt_train`` records every one in the database
   (search.services.projections), where staff may switch to a better one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

from catalog.imaging import load_image
from catalog.models import Product, ProductImage
from search.embedder import backbone_embedder
from search.embedding.adapt import AdaptConfig, AdaptError, Projection, product_split, projection_train
from search.relevance.figures import Figures, figures
from search.relevance.variants import KINDS, RECIPE_VERSION, scenes_load, variant_make, variant_rng
from search.relevance.vector_search import outcomes_by_vectors
from search.selectors import confirmed_feedback_pairs

logger = logging.getLogger(__name__)

CATALOG = "catalog"  # the kind of a row that is the catalog photo itself, not a variant
FEEDBACK = "feedback"  # a shopper's photo that staff confirmed shows the product (image id: -feedback id)
MAX_VARIANTS = 20
Progress = Callable[[int, int], None]  # (photos embedded, photos)


class AdaptRefused(ValueError):
    """Bad options or a catalog too small to split; the message says what to change."""


@dataclass(frozen=True)
class AdaptFeatures:
    features: np.ndarray  # (n, d) backbone vectors, L2-normalised
    image_ids: np.ndarray
    product_ids: np.ndarray
    category_ids: np.ndarray  # -1: the product has no category
    kinds: np.ndarray  # CATALOG, or the variant kind
    fingerprint: str  # the backbone's
    version: str  # changes whenever any input of the features changes
    cached: bool = False


@dataclass(frozen=True)
class AdaptComparison:
    backbone: Figures
    projected: Figures
    better: bool
    verdict: str
    projection: Projection
    train_products: int
    held_out_products: int
    train_rows: int
    saved_to: Path | None
    held_out_ids: tuple[int, ...] = ()  # the held-out products
    feedback_rows: int = 0  # shoppers' confirmed photos among the rows (training or held-out)


def adapt_features(*, variants: int, seed: int, progress: Progress | None = None) -> AdaptFeatures:
    if not 1 <= variants <= MAX_VARIANTS:
        raise AdaptRefused(
            f"The number of variants per photo must be between 1 and {MAX_VARIANTS}, not {variants}."
        )
    embedder = backbone_embedder()
    scenes = scenes_load(settings.SEARCH_RELEVANCE_SCENES_DIR)
    images = list(
        ProductImage.objects.filter(product__is_active=True).select_related("product").order_by("pk")
    )
    key = [embedder.fingerprint, RECIPE_VERSION, seed, variants, scenes.signature]
    key.append([[i.pk, i.sha256, i.product_id, i.product.category_id] for i in images])
    pairs = confirmed_feedback_pairs()
    categories = dict(
        Product.objects.filter(pk__in={p.product_id for p in pairs}).values_list("pk", "category_id")
    )
    key.append([[p.feedback_id, p.photo, p.product_id, p.crop, categories.get(p.product_id)] for p in pairs])
    version = hashlib.sha256(json.dumps(key).encode()).hexdigest()
    path = Path(settings.VAR_DIR) / "adapt" / f"features-{version[:24]}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as data:
            arrays = {
                name: data[name] for name in ("features", "image_ids", "product_ids", "category_ids", "kinds")
            }
        return AdaptFeatures(**arrays, fingerprint=embedder.fingerprint, version=version, cached=True)
    rows: list[tuple[int, int, int, str]] = []
    vectors = []
    for done, image in enumerate(images, 1):
        try:
            with image.image.storage.open(image.image.name, "rb") as handle:
                data = handle.read()
            picture = load_image(data, max_pixels=settings.CATALOG_IMAGE_MAX_PIXELS)
        except (OSError, ValueError):
            logger.warning("adapt: photo %s could not be read; left out", image.pk, exc_info=True)
            continue
        shots, kinds = [data], [CATALOG]
        for j in range(variants):
            kind = KINDS[j % len(KINDS)]
            shots.append(
                variant_make(picture, kind, variant_rng(seed + j // len(KINDS), image.sha256, kind), scenes)
            )
            kinds.append(kind)
        # Decoded as the index decodes a catalog photo, so the catalog rows are the index's vectors.
        pictures = [embedder.load(shot, max_pixels=settings.CATALOG_IMAGE_MAX_PIXELS) for shot in shots]
        vectors.append(embedder.embed(pictures))
        category = image.product.category_id or -1
        rows.extend((image.pk, image.product_id, category, kind) for kind in kinds)
        if progress:
            progress(done, len(images))
    for pair in pairs:
        picture = _feedback_picture(pair, embedder)
        if picture is not None:
            vectors.append(embedder.embed([picture]))
            rows.append((-pair.feedback_id, pair.product_id, categories.get(pair.product_id) or -1, FEEDBACK))
    if not rows:
        raise AdaptRefused("Nothing to learn from: no active product has a readable photo.")
    result = AdaptFeatures(
        features=np.concatenate(vectors).astype(np.float32),
        image_ids=np.array([r[0] for r in rows]),
        product_ids=np.array([r[1] for r in rows]),
        category_ids=np.array([r[2] for r in rows]),
        kinds=np.array([r[3] for r in rows]),
        fingerprint=embedder.fingerprint,
        version=version,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with open(partial, "wb") as handle:
        np.savez(
            handle,
            **{
                n: getattr(result, n)
                for n in ("features", "image_ids", "product_ids", "category_ids", "kinds")
            },
        )
    partial.replace(path)  # a reader never sees half a file
    return result


def adapt_compare(
    data: AdaptFeatures, *, held_out: float, seed: int, config: AdaptConfig, save: bool = True
) -> AdaptComparison:
    """Trains on the training products only and compares on the held-out products' variants."""
    try:
        held = product_split(data.product_ids, held_out=held_out, seed=seed)
        train = ~held
        version = hashlib.sha256(f"{data.version}:{held_out}:{seed}".encode()).hexdigest()
        projection = projection_train(
            data.features[train],
            data.product_ids[train],
            data.category_ids[train],
            config=config,
            data_version=version,
        )
    except AdaptError as exc:
        raise AdaptRefused(str(exc)) from exc
    gallery = data.kinds == CATALOG
    queries = held & ~gallery
    categories = {
        int(p): (int(c) if c >= 0 else None) for p, c in zip(data.product_ids, data.category_ids, strict=True)
    }

    def scored(space: Callable[[np.ndarray], np.ndarray]) -> Figures:
        return figures(
            outcomes_by_vectors(
                space(data.features[queries]),
                data.image_ids[queries],
                data.product_ids[queries],
                data.kinds[queries],
                space(data.features[gallery]),
                data.image_ids[gallery],
                data.product_ids[gallery],
                categories,
            )
        )

    before, after = scored(lambda x: x), scored(projection.project)
    better, verdict = _verdict(before, after)
    saved_to = None
    if better and save:
        saved_to = Path(settings.VAR_DIR) / "adapt" / f"projection-{projection.fingerprint[:24]}.npz"
        saved_to.parent.mkdir(parents=True, exist_ok=True)
        projection.save(saved_to)
    return AdaptComparison(
        backbone=before,
        projected=after,
        better=better,
        verdict=verdict,
        projection=projection,
        train_products=len(np.unique(data.product_ids[train])),
        held_out_products=len(np.unique(data.product_ids[held])),
        train_rows=int(train.sum()),
        saved_to=saved_to,
        held_out_ids=tuple(int(p) for p in np.unique(data.product_ids[held])),
        feedback_rows=int((data.kinds == FEEDBACK).sum()),
    )


def _feedback_picture(pair, embedder):
    """The shopper's photo as searched (the crop of it, if one was drawn), or None if it is unreadable."""
    try:
        with pair.open() as handle:
            picture = embedder.load(handle.read(), max_pixels=settings.CATALOG_IMAGE_MAX_PIXELS)
    except (OSError, ValueError):
        logger.warning(
            "adapt: feedback photo %s could not be read; left out", pair.feedback_id, exc_info=True
        )
        return None
    if pair.crop:
        from search.embedding import crop_fraction

        picture = crop_fraction(picture, pair.crop)
    return picture


def _verdict(before: Figures, after: Figures) -> tuple[bool, str]:
    """Better only when R@1 rises and neither R@10 nor same-category P@10 falls: a projection that
    trades one figure for another is not offered."""
    if not before.queries:
        return False, "No held-out variant was searched: nothing to compare."
    pairs = [("R@1", before.r_at_1, after.r_at_1), ("R@10", before.r_at_10, after.r_at_10)]
    if before.category_p_at_10 is not None and after.category_p_at_10 is not None:
        pairs.append(("same-category P@10", before.category_p_at_10, after.category_p_at_10))
    worse = [name for name, b, a in pairs if a < b]
    if after.r_at_1 > before.r_at_1 and not worse:
        return True, "The projection is better on the held-out products."
    if worse:
        return False, f"The projection is NOT better on the held-out products (worse {', '.join(worse)})."
    return False, "The projection is NOT better on the held-out products (R@1 did not rise)."
