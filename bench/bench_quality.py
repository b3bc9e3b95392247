"""Search quality on real photos: copy detection and category retrieval, per backbone.

    .venv/bin/python bench/bench_quality.py [--data DIR] [--fashion-n 3000] [--models lite0,resnet18,resnet50]

Copy detection (is this catalog photo found again after a shopper re-shot or edited it?): the
originals are the real photos of gcompris/, opencv/ and mvtb/ (drawings, targets and logos left
out); each is turned into queries by one edit - crop 50 % of the area, rotation by +-15 deg, brightness
x0.6 and x1.5, JPEG quality 20-40, a 1/4 downscale - and by a chain (crop + rotation + brightness +
JPEG). Recall@1 and @10 of the original among all originals, exact cosine search.

Category retrieval (does a photo of a sneaker bring back sneakers?): Fashion-MNIST test set, 1,000
queries (100 per class) against the other images of a stratified subset of --fashion-n images (all
10,000 with --fashion-n 10000: 1,000 queries against 9,000, as DATA.md describes). Precision@10 and
mAP, with a raw-pixel cosine baseline on the same subset and on all 10,000.

Backbones: EfficientNet-Lite0 with its ImageNet weights (the offline fallback the site uses here);
ResNet-18/50 with UNTRAINED (random) weights, for contrast only: ImageNet ResNet weights cannot be
downloaded on this machine. Edits use a fixed random seed, so runs are repeatable.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.devdata import data_dir, fashion_mnist_test, product_photos  # noqa: E402
from catalog.imaging import to_rgb  # noqa: E402
from search.embedding import Embedder, EmbedderConfig, build_embedder  # noqa: E402

Edit = Callable[[Image.Image, random.Random], Image.Image]


# --- edits a shopper's photo goes through -------------------------------------------------------


def crop_half(image: Image.Image, rng: random.Random) -> Image.Image:
    """A random window holding 50 % of the area (same aspect ratio)."""
    side = 0.5**0.5
    w, h = round(image.width * side), round(image.height * side)
    x, y = rng.randint(0, image.width - w), rng.randint(0, image.height - h)
    return image.crop((x, y, x + w, y + h))


def rotate(image: Image.Image, rng: random.Random) -> Image.Image:
    angle = rng.choice([-15, 15])
    return image.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=(255, 255, 255))


def darker(image: Image.Image, rng: random.Random) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(0.6)


def brighter(image: Image.Image, rng: random.Random) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(1.5)


def jpeg(image: Image.Image, rng: random.Random) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=rng.randint(20, 40))
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def quarter(image: Image.Image, rng: random.Random) -> Image.Image:
    return image.resize((max(1, image.width // 4), max(1, image.height // 4)), Image.Resampling.BILINEAR)


def chain(image: Image.Image, rng: random.Random) -> Image.Image:
    lighting = darker if rng.random() < 0.5 else brighter
    return jpeg(lighting(rotate(crop_half(image, rng), rng), rng), rng)


EDITS: dict[str, Edit] = {
    "crop 50%": crop_half,
    "rotate 15": rotate,
    "bright x0.6": darker,
    "bright x1.5": brighter,
    "JPEG q20-40": jpeg,
    "1/4 scale": quarter,
    "chain": chain,
}


# --- metrics --------------------------------------------------------------------------------------


def recall_at(queries: np.ndarray, gallery: np.ndarray, truth: np.ndarray, ks=(1, 10)) -> dict[int, float]:
    ranks = np.argsort(-(queries @ gallery.T), axis=1)
    return {k: float(np.mean([truth[i] in ranks[i, :k] for i in range(len(truth))])) for k in ks}


def precision_and_map(
    q: np.ndarray, q_labels: np.ndarray, g: np.ndarray, g_labels: np.ndarray
) -> tuple[float, float]:
    """Precision@10 and mean average precision over the whole ranked gallery."""
    order = np.argsort(-(q @ g.T), axis=1)
    relevant = g_labels[order] == q_labels[:, None]
    p10 = float(relevant[:, :10].mean())
    hits = np.cumsum(relevant, axis=1)
    precision = hits / np.arange(1, relevant.shape[1] + 1)
    ap = (precision * relevant).sum(axis=1) / np.maximum(relevant.sum(axis=1), 1)
    return p10, float(ap.mean())


def unit(rows: np.ndarray) -> np.ndarray:
    rows = rows.astype(np.float32)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


# --- the benchmark --------------------------------------------------------------------------------


def copy_detection(embedder: Embedder, originals: list[Image.Image]) -> dict[str, dict[int, float]]:
    gallery = embedder.embed(originals)
    truth = np.arange(len(originals))
    results = {}
    for name, edit in EDITS.items():
        rng = random.Random(f"{name}-2026")  # same edits for every backbone
        queries = embedder.embed([edit(image, rng) for image in originals])
        results[name] = recall_at(queries, gallery, truth)
    return results


def fashion_split(labels: np.ndarray, total: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Stratified: 100 queries per class, and (total - 1000) / 10 other images per class."""
    rng = np.random.default_rng(seed)
    queries, others = [], []
    per_class_others = (total - 1000) // 10
    for label in range(10):
        members = rng.permutation(np.flatnonzero(labels == label))
        queries.append(members[:100])
        others.append(members[100 : 100 + per_class_others])
    return np.concatenate(queries), np.concatenate(others)


def fashion_retrieval(
    embedder: Embedder, images: np.ndarray, labels: np.ndarray, split
) -> tuple[float, float]:
    q_idx, g_idx = split
    pictures = [to_rgb(Image.fromarray(images[i], "L")) for i in np.concatenate([q_idx, g_idx])]
    vectors = embedder.embed(pictures)
    q, g = vectors[: len(q_idx)], vectors[len(q_idx) :]
    return precision_and_map(q, labels[q_idx], g, labels[g_idx])


def raw_pixels(images: np.ndarray, labels: np.ndarray, split) -> tuple[float, float]:
    q_idx, g_idx = split
    flat = unit(images.reshape(len(images), -1))
    return precision_and_map(flat[q_idx], labels[q_idx], flat[g_idx], labels[g_idx])


def model_configs(names: list[str], empty_home: str) -> dict[str, EmbedderConfig]:
    configs = {
        # No weights path, an empty cache, no download: the resolver takes the offline fallback.
        "lite0": EmbedderConfig(backbone="resnet50", torch_home=empty_home, allow_download=False),
        "resnet18": EmbedderConfig(backbone="resnet18", untrained=True),
        "resnet50": EmbedderConfig(backbone="resnet50", untrained=True),
    }
    return {name: configs[name] for name in names}


def print_copy_table(rows: dict[str, dict[str, dict[int, float]]], count: int) -> None:
    print(f"\nCopy detection, {count} originals, recall@1 / recall@10:")
    print(f"  {'model':<70}" + "".join(f"{name:>14}" for name in EDITS))
    for label, results in rows.items():
        cells = "".join(f"{results[n][1]:>8.2f} /{results[n][10]:>4.2f}" for n in EDITS)
        print(f"  {label:<70}{cells}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="photo sets folder (default: $SHOP_SEARCH_DEVDATA or var/devdata)")
    parser.add_argument("--fashion-n", type=int, default=3000, help="Fashion-MNIST images used (1000..10000)")
    parser.add_argument("--models", default="lite0,resnet18,resnet50")
    parser.add_argument(
        "--originals", type=int, default=0, help="use N originals spread over the sets (0 = all)"
    )
    args = parser.parse_args()
    if not 2000 <= args.fashion_n <= 10000:
        parser.error("--fashion-n must be between 2000 and 10000")
    root = data_dir(args.data)
    paths = product_photos(root)
    if args.originals:
        # Evenly spread, so every set (gcompris, opencv, mvtb) stays represented.
        paths = [
            paths[i] for i in np.linspace(0, len(paths) - 1, min(args.originals, len(paths))).astype(int)
        ]
    originals = [to_rgb(Image.open(path)) for path in paths]
    images, labels = fashion_mnist_test(root)
    split = fashion_split(labels, args.fashion_n)
    print(
        f"{len(originals)} originals; Fashion-MNIST: {len(split[0])} queries against {len(split[1])} others"
    )
    copy_rows, fashion_rows = {}, {}
    with tempfile.TemporaryDirectory() as empty_home:
        for name, config in model_configs(args.models.split(","), empty_home).items():
            embedder = build_embedder(config)
            print(f"  {name}: {embedder.label} ...", flush=True)
            started = time.perf_counter()
            copy_rows[embedder.label] = copy_detection(embedder, originals)
            middle = time.perf_counter()
            fashion_rows[embedder.label] = fashion_retrieval(embedder, images, labels, split)
            print(
                f"  {name}: copy detection {middle - started:.0f} s, "
                f"Fashion-MNIST {time.perf_counter() - middle:.0f} s",
                flush=True,
            )
    print_copy_table(copy_rows, len(originals))
    print(f"\nCategory retrieval, Fashion-MNIST ({len(split[0])} queries / {len(split[1])} others):")
    print(f"  {'model':<70}{'P@10':>7}{'mAP':>7}")
    fashion_rows["raw pixels (cosine), same subset"] = raw_pixels(images, labels, split)
    fashion_rows["raw pixels (cosine), all 10,000 (1,000 vs 9,000)"] = raw_pixels(
        images, labels, fashion_split(labels, 10000)
    )
    for label, (p10, mean_ap) in fashion_rows.items():
        print(f"  {label:<70}{p10:>7.3f}{mean_ap:>7.3f}")


if __name__ == "__main__":
    main()
