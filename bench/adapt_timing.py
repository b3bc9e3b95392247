"""Training time and memory of the projection for a 10k-photo catalog, and the backbone's cost per photo.

Training needs only the cached features, so its cost is measured on a 10k-photo catalog of features
shaped like the real ones (bench_adapt.py's photos): 1280-d unit vectors, 2 photos per product
(5,000 products), 50 categories, and ``variants`` shopper-like variants per photo (``manage.py
adapt_train`` makes 2 by default). The rows are drawn so that a photo's variants are as close to it, and
two products as close to each other, as in the real photos (mean cosines measured there and printed):
the time per epoch depends only on the shapes; how many epochs early stopping lets run depends on the
data, so that count is also printed for the real sets. The backbone's cost per photo (making a variant,
and decoding + embedding one picture) is read from the real variants' pass (bench/adapt_features.py).
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.adapt_features import MAX_PIXELS, half_scenes
from search.embedding import Embedder, to_rgb
from search.embedding.adapt import AdaptConfig, projection_train
from search.relevance.variants import variant_make, variant_rng

PHOTOS, PHOTOS_PER_PRODUCT, CATEGORIES = 10_000, 2, 50


def real_cosines(photos: dict) -> tuple[float, float]:
    """(mean cosine of a photo and its own variants, mean cosine of two different photos)."""
    originals, variants = photos["originals"], photos["variants"]
    own = float(np.einsum("nd,nvd->nv", originals, variants).mean())
    pairs = originals @ originals.T
    other = float(pairs[~np.eye(len(pairs), dtype=bool)].mean())
    return own, other


def synthetic_catalog(own: float, other: float, variants: int, seed: int = 2026) -> tuple[np.ndarray, ...]:
    """Rows (photos x (1 + variants), 1280), product ids and category ids with those mean cosines."""
    rng = np.random.default_rng(seed)
    dim = 1280
    products = PHOTOS // PHOTOS_PER_PRODUCT

    def unit(x: np.ndarray) -> np.ndarray:
        return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)

    # A shared direction gives the between-photo cosine, a category and a product part the structure,
    # and per-row noise the photo-to-variant cosine (cos ~ 1 / sqrt(1 + noise^2) for unit parts).
    common = unit(rng.standard_normal(dim))
    category_of = rng.integers(0, CATEGORIES, products)
    categories = unit(rng.standard_normal((CATEGORIES, dim)))
    product_vectors = unit(categories[category_of] + 1.5 * unit(rng.standard_normal((products, dim))))
    shared = np.sqrt(1.25 * other / max(1e-6, 1 - other))  # 1.25: the product part + the photo noise
    photo_of = np.repeat(np.arange(products), PHOTOS_PER_PRODUCT)
    photos = unit(
        shared * common + product_vectors[photo_of] + 0.5 * unit(rng.standard_normal((PHOTOS, dim)))
    )
    noise = np.sqrt(max(1e-6, 1 / max(own, 1e-3) ** 2 - 1))
    per_photo = 1 + variants
    rows = np.repeat(photos, per_photo, axis=0)
    rows = unit(rows + noise * unit(rng.standard_normal(rows.shape)).astype(np.float32))
    rows[::per_photo] = photos  # the catalog photo itself, untouched
    product_ids = np.repeat(photo_of, per_photo)
    return rows, product_ids, np.repeat(category_of[photo_of], per_photo)


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def training_10k(
    cosines: tuple[float, float],
    *,
    max_epochs: int,
    source: str,
    variants_list: tuple[int, ...] = (2,),
    sampled: tuple[int, ...] = (AdaptConfig.sampled_products,),
    rounds: int = 1,
) -> None:
    """``cosines``: (photo-variant, photo-photo) mean cosines to draw the rows with (``real_cosines``).
    ``sampled``: the ``sampled_products`` values compared (0: the softmax over every product), run
    ``rounds`` times, the order reversed every other round so that load drifts hit both alike. The
    validation loss is over every product whatever the setting, so it compares them."""
    own, other = cosines
    print(
        f"\nTraining for a {PHOTOS:,}-photo catalog ({PHOTOS // PHOTOS_PER_PRODUCT:,} products, "
        f"{CATEGORIES} categories); {source}: mean cosine photo-variant {own:.3f}, photo-photo {other:.3f}"
    )
    print(
        f"  {'variants':>8}{'sampled':>8}{'rows':>9}{'epochs':>8}{'s/epoch':>9}{'wall s':>8}{'CPU s':>8}"
        f"{'peak RSS MB':>13}{'cos in/out':>13}{'best val. loss':>16}"
    )
    for variants in variants_list:
        rows, products, categories = synthetic_catalog(own, other, variants)
        check = rows[:: 1 + variants]
        inside = float(
            np.einsum("nd,nvd->nv", check, rows.reshape(len(check), 1 + variants, -1)[:, 1:]).mean()
        )
        sample = check[:2000] @ check[:2000].T
        between = float(sample[~np.eye(len(sample), dtype=bool)].mean())
        for turn in range(rounds):
            for count in sampled if turn % 2 == 0 else sampled[::-1]:
                started, cpu = time.perf_counter(), time.process_time()
                # The default config, capped when asked (--timing-epochs), with this sampled_products.
                config = AdaptConfig(max_epochs=max_epochs, sampled_products=count)
                projection = projection_train(
                    rows, products, categories, config=config, data_version="timing"
                )
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
                trained = projection.trained
                epochs = trained["epochs"]
                print(
                    f"  {variants:>8}{count or 'all':>8}{len(rows):>9,}{epochs:>8}{seconds / epochs:>9.2f}"
                    f"{seconds:>8.1f}{cpu:>8.1f}{max_rss_mb():>13.0f}{inside:>7.3f}/{between:.3f}"
                    f"{min(trained['validation_loss']):>16.4f}",
                    flush=True,
                )
                print(
                    f"  (early stopping watched {trained['validation_rows']:,} held-out rows, "
                    f"best epoch {trained['best_epoch']}; load average now {os.getloadavg()[0]:.2f})",
                    flush=True,
                )
        del rows


def backbone_cost(photos: dict, embedder: Embedder, root: Path, sample: int = 16) -> None:
    """The cached pass's wall time (hostage to the machine's load) and a small live measurement of
    CPU time per variant: making it (one thread) and decoding + embedding it (torch's threads)."""
    count = int(photos["variant_count"])
    print(
        f"\nBackbone pass (real photos, {count:,} variants, made at load {float(photos['load']):.1f}): "
        f"wall {1000 * float(photos['make_seconds']) / count:.0f} ms to make a variant, "
        f"{1000 * float(photos['embed_seconds']) / count:.0f} ms to decode + embed it"
    )
    scenes = half_scenes(root, Path(tempfile.mkdtemp()))["tune"]
    paths = [root / p for p in photos["paths"][:: max(1, len(photos["paths"]) // sample)][:sample]]
    pictures = [to_rgb(Image.open(path)) for path in paths]
    embedder.embed(pictures[:1])  # warm-up
    make_cpu, made = time.process_time(), []
    for number, picture in enumerate(pictures):
        for kind in ("reshot", "scene"):
            made.append(variant_make(picture, kind, variant_rng(number, "timing", kind), scenes))
    make_cpu = time.process_time() - make_cpu
    embed_cpu, embed_wall = time.process_time(), time.perf_counter()
    for shot in made:  # one at a time, as the features are made per photo
        embedder.embed([embedder.load(shot, max_pixels=MAX_PIXELS)])
    embed_cpu, embed_wall = time.process_time() - embed_cpu, time.perf_counter() - embed_wall
    make_ms, embed_ms = 1000 * make_cpu / len(made), 1000 * embed_cpu / len(made)
    print(
        f"  live, {len(made)} variants at load {os.getloadavg()[0]:.1f}: CPU {make_ms:.0f} ms to make one, "
        f"{embed_ms:.0f} ms to decode + embed one ({torch.get_num_threads()} torch threads; wall "
        f"{1000 * embed_wall / len(made):.0f} ms)"
    )
    for variants in (2, 4):
        cpu = PHOTOS * (embed_ms + variants * (make_ms + embed_ms)) / 1000
        print(
            f"  {PHOTOS:,} photos x (1 + {variants} variants): {cpu / 60:.0f} CPU-min, i.e. about "
            f"{cpu / 60 / 2:.0f}-{cpu / 60:.0f} min on 2 idle cores (once; the features are then cached)"
        )
