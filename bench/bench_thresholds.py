"""Where "close match" and "looks similar" start: score distributions of true and false top hits.

Catalog: the dev sets' product photos that a shop would sell (gcompris tools/ and others/). Queries:
- sold: each catalog photo re-shot (crop, rotation, relight, JPEG) and pasted small into a real wallpaper
  (a product in a scene), searched as the site does (whole photo + objects found, best evidence);
- not sold: photos of other things (gcompris fishes/, monuments/, renewable/, mvtb campus) and bare
  wallpapers, searched the same way: their top hit is wrong by construction.
Prints the top-1 score percentiles of right hits, wrong hits among sold queries, and not-sold queries, and
the precision of the top hit above candidate thresholds: pick "close" where precision is high and
"similar" where a not-sold photo rarely reaches.

    .venv/bin/python bench/bench_thresholds.py [--data var/devdata] [--seed 5]
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.devdata import data_dir  # noqa: E402
from catalog.imaging import load_image  # noqa: E402
from search.embedding import EmbedderConfig, build_embedder  # noqa: E402
from search.embedding.objects import find_objects  # noqa: E402
from search.embedding.preprocess import crop_fraction  # noqa: E402

SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES) if folder.is_dir() else []


def reshot(image: Image.Image, rng: random.Random) -> Image.Image:
    w, h = image.size
    f = rng.uniform(0.75, 0.95)
    x, y = rng.uniform(0, 1 - f) * w, rng.uniform(0, 1 - f) * h
    image = image.crop((int(x), int(y), int(x + f * w), int(y + f * h)))
    image = image.rotate(rng.uniform(-12, 12), expand=True, fillcolor=(255, 255, 255))
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.7, 1.3))
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=rng.randint(50, 80))
    return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


def in_scene(image: Image.Image, scene: Image.Image, rng: random.Random) -> Image.Image:
    scene = scene.copy()
    width = int(scene.width * rng.uniform(0.25, 0.5))
    image = image.resize((width, max(1, int(image.height * width / image.width))))
    x = rng.randint(0, max(0, scene.width - image.width))
    y = rng.randint(0, max(0, scene.height - image.height))
    scene.paste(image, (x, y))
    return scene


def best_scores(embedder, picture: Image.Image, gallery: np.ndarray) -> tuple[int, float]:
    boxes = find_objects(embedder, picture)
    crops = [crop_fraction(picture, b.crop) for b in boxes if b.w < 0.999 or b.h < 0.999]
    vectors = embedder.embed([picture, *crops])
    sims = (vectors @ gallery.T).max(axis=0)
    top = int(np.argmax(sims))
    return top, float(sims[top])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    root = data_dir(args.data)
    rng = random.Random(args.seed)
    embedder = build_embedder(EmbedderConfig(allow_download=False, threads=2))
    print(f"model: {embedder.name} (fallback={embedder.fallback})")
    catalog = photos(root / "gcompris" / "tools") + photos(root / "gcompris" / "others")
    others = sum((photos(root / "gcompris" / name) for name in ("fishes", "monuments", "renewable")), [])
    others += photos(root / "mvtb" / "campus")[:20]
    scenes = [
        load_image(p.read_bytes(), max_pixels=40_000_000).resize((1280, 800))
        for p in photos(root / "wallpapers")
    ]
    originals = [load_image(p.read_bytes(), max_pixels=40_000_000) for p in catalog]
    gallery = embedder.embed(originals)
    started = time.perf_counter()
    right, wrong, not_sold = [], [], []
    for index, original in enumerate(originals):
        for query in (reshot(original, rng), in_scene(reshot(original, rng), rng.choice(scenes), rng)):
            top, score = best_scores(embedder, query, gallery)
            (right if top == index else wrong).append(score)
    for path in others:
        picture = load_image(path.read_bytes(), max_pixels=40_000_000)
        not_sold.append(best_scores(embedder, picture, gallery)[1])
    for scene in scenes:
        not_sold.append(best_scores(embedder, scene, gallery)[1])
    print(
        f"catalog {len(catalog)} photos; sold queries {len(right) + len(wrong)}, not sold {len(not_sold)}; "
        f"{time.perf_counter() - started:.0f} s"
    )
    for name, values in (("right top hit", right), ("wrong top hit (sold)", wrong), ("not sold", not_sold)):
        q = np.percentile(values, [5, 25, 50, 75, 95]) if values else [float("nan")] * 5
        quantiles = "  ".join(f"p{p} {v:.3f}" for p, v in zip((5, 25, 50, 75, 95), q, strict=True))
        print(f"  {name:<22} n={len(values):4d}  {quantiles}")
    print("threshold  share of right hits above  precision of top hit above (sold+not sold)  not-sold above")
    every = [(s, True) for s in right] + [(s, False) for s in wrong + not_sold]
    for t in np.arange(0.50, 0.96, 0.05):
        above = [ok for s, ok in every if s >= t]
        precision = sum(above) / len(above) if above else float("nan")
        share, leak = np.mean([s >= t for s in right]), np.mean([s >= t for s in not_sold])
        print(f"  {t:.2f}      {share:.2f}{'':23}{precision:.2f}{'':40}{leak:.2f}")


if __name__ == "__main__":
    main()
