"""Product in a scene: whole-photo search against object finding (search.embedding.objects).

    .venv/bin/python bench/bench_scenes.py [--data DIR] [--long-sides 640,448] [--runs 40]

Queries: bench/scene_set.py (catalog photos of tools and household things pasted into real
backgrounds that are not in the catalog, plus OpenCV's real box -> box_in_scene pair), split into a
"tune" half and a "test" half that share no product and no background. Catalog: the dev sets'
photos of things (bench/devdata.py) minus the backgrounds; exact cosine search in NumPy.

Reported per half: recall@1/@10 of the whole photo (today's search: one centre-cropped 224-px
picture), of the true box as crop, the main box's IoU with the true box, and recall with object
finding under each ranking rule:
  (a) main box      the highest-confidence box only
  (b) best evidence each product's best similarity over the boxes and the whole photo
  (c) max(main, whole)  the main box and the whole photo only
and (b) again with a second catalog vector per photo (its own main box: issue 8 item 6). "boxes" is
what a shopper is shown per photo (parts of a thing are embedded and ranked but not shown).
Product shots: the same finder on the dev sets' own photos of the pasted products (one product on a
plain or table backdrop, like a catalog photo): boxes shown per photo, how many show exactly one, how
many show a second box mostly (>= 70 %) inside the main one, and, for the photos on white (where the
product's extent is known), how often the main box covers the product (IoU >= 0.5).
Timing: p50 of one plain query embedding (preprocess + forward at 224) against object finding
(the feature-map pass + box finding + cropping and embedding boxes and whole photo in one batch),
alternated on the same scenes. Model: the EfficientNet-Lite0 offline fallback the site runs here.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.devdata import data_dir, scene_products  # noqa: E402
from bench.scene_set import SceneSet, build_scene_set, white_background_mask  # noqa: E402
from search.embedding import Embedder, EmbedderConfig, build_embedder, crop_fraction  # noqa: E402
from search.embedding.objects import ObjectFinder, embed_with_objects, share_inside  # noqa: E402

RULES = ("(a) main box", "(b) best evidence", "(c) max(main, whole)")


def ranks(scores: np.ndarray, truth: int) -> int:
    """0-based rank of the true product (ties count against it)."""
    return int((scores > scores[truth]).sum())


def rule_scores(rule: str, catalog: np.ndarray, whole: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    whole_sims, box_sims = catalog @ whole, catalog @ boxes.T
    if rule == RULES[0]:
        return box_sims[:, 0]
    if rule == RULES[1]:
        return np.maximum(whole_sims, box_sims.max(axis=1))
    return np.maximum(whole_sims, box_sims[:, 0])


def catalog_objects(embedder: Embedder, finder: ObjectFinder, scenes: SceneSet) -> np.ndarray:
    """A second vector per catalog photo: its own main box (the photo itself when the box is ~all of it)."""
    crops = []
    for image in scenes.catalog:
        main = finder.find(embedder, image)[0]
        crops.append(image if main.w * main.h > 0.9 else crop_fraction(image, main.crop))
    return embedder.embed(crops)


def evaluate(embedder: Embedder, finder: ObjectFinder, scenes: SceneSet, with_catalog_objects: bool) -> dict:
    catalog = embedder.embed(scenes.catalog)
    second = catalog_objects(embedder, finder, scenes) if with_catalog_objects else None
    rows = []
    for query in scenes.queries:
        boxes = finder.find(embedder, query.image)
        whole, vectors = embed_with_objects(embedder, query.image, boxes)
        true_box = embedder.embed([crop_fraction(query.image, _clipped(query.box))])[0]
        row = {
            "half": query.half,
            "name": query.name,
            "whole": ranks(catalog @ whole, query.truth),
            "true box": ranks(catalog @ true_box, query.truth),
            "iou": boxes[0].iou(query.box),
            "best iou": max(box.iou(query.box) for box in boxes),
            "boxes": sum(not box.part for box in boxes),
        }
        for rule in RULES:
            row[rule] = ranks(rule_scores(rule, catalog, whole, vectors), query.truth)
        if second is not None:
            both = np.maximum(
                rule_scores(RULES[1], catalog, whole, vectors), rule_scores(RULES[1], second, whole, vectors)
            )
            row["(b) + catalog objects"] = ranks(both, query.truth)
        rows.append(row)
    return {"rows": rows}


def _clipped(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x, y, w, h = box
    return x, y, min(w, 1.0 - x), min(h, 1.0 - y)


def print_quality(label: str, rows: list[dict]) -> None:
    columns = ["whole", "true box", *RULES] + (
        ["(b) + catalog objects"] if "(b) + catalog objects" in rows[0] else []
    )
    print(f"\n{label}")
    print(
        f"  {'half':<6}{'n':>4}"
        + "".join(f"{c:>24}" for c in columns)
        + f"{'main IoU':>10}{'>=0.5':>7}{'any>=0.5':>9}{'boxes':>7}"
    )
    for half in ("tune", "test", "all"):
        part = [r for r in rows if half == "all" or r["half"] == half]
        cells = "".join(
            f"{np.mean([r[c] < 1 for r in part]):>15.3f} /{np.mean([r[c] < 10 for r in part]):>6.3f}"
            for c in columns
        )
        iou = np.array([r["iou"] for r in part])
        best = np.array([r["best iou"] for r in part])
        boxes = np.mean([r["boxes"] for r in part])
        boxes_found = (
            f"{iou.mean():>10.2f}{np.mean(iou >= 0.5):>7.2f}{np.mean(best >= 0.5):>9.2f}{boxes:>7.1f}"
        )
        print(f"  {half:<6}{len(part):>4}{cells}{boxes_found}")
    pair = next(r for r in rows if r["name"] == "box in box_in_scene")
    print(
        f"  box_in_scene: whole rank {pair['whole'] + 1}, true box rank {pair['true box'] + 1}, "
        f"(b) rank {pair[RULES[1]] + 1}, main box IoU {pair['iou']:.2f}"
    )


def product_shots(embedder: Embedder, finder: ObjectFinder, scenes: SceneSet, root: Path) -> dict[str, float]:
    """How the finder boxes the dev sets' own product photos (see the module docstring)."""
    rows = {path: i for i, path in enumerate(scenes.catalog_paths)}
    shown, single, nested, covered, embedded = [], [], [], [], []
    for path in scene_products(root):
        image = scenes.catalog[rows[path]]
        found = finder.find(embedder, image)
        embedded.append(len(found) + 1)  # the whole photo and every box, parts included
        boxes = [box for box in found if not box.part]
        shown.append(len(boxes))
        single.append(len(boxes) == 1)
        nested.append(any(share_inside(box, boxes[0]) >= 0.7 for box in boxes[1:]))
        mask = np.asarray(white_background_mask(image)) >= 128
        if not mask.all():  # on white: the product's extent is known
            ys, xs = np.nonzero(mask)
            extent = (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min())
            covered.append(boxes[0].iou(np.array(extent) / np.array(mask.shape[::-1] * 2)) >= 0.5)
    return {
        "photos": len(shown),
        "boxes shown": float(np.mean(shown)),
        "exactly one": float(np.mean(single)),
        "one inside the main": float(np.mean(nested)),
        "on white": len(covered),
        "main covers product": float(np.mean(covered)),
        "pictures embedded": float(np.mean(embedded)),
    }


def timing(embedder: Embedder, finder: ObjectFinder, scenes: SceneSet, runs: int) -> dict[str, float]:
    """Medians in ms, alternating a plain query embedding and object finding on the same scenes."""
    images = [q.image for q in scenes.queries if q.half == "test"][:runs]
    parts: dict[str, list[float]] = {"plain": [], "feature map": [], "boxes": [], "embed": [], "objects": []}
    embedder.embed(images[:1])
    finder.find(embedder, images[0])  # warm-up
    for image in images:
        started = time.perf_counter()
        embedder.embed([image])
        parts["plain"].append(time.perf_counter() - started)
        for name, seconds in object_finding_parts(embedder, finder, image).items():
            parts[name].append(seconds)
    return {name: 1000 * median(values) for name, values in parts.items()}


def object_finding_parts(embedder: Embedder, finder: ObjectFinder, image: Image.Image) -> dict[str, float]:
    """Seconds of object finding on one photo, by part: the feature-map pass, finding the boxes in it
    (NumPy), cropping the boxes and embedding them with the whole photo in one batch, and all of it."""
    started = time.perf_counter()
    grid = finder.feature_map(embedder, image)
    mapped = time.perf_counter()
    boxes = finder.boxes(grid)
    found = time.perf_counter()
    embed_with_objects(embedder, image, boxes)
    done = time.perf_counter()
    return {
        "feature map": mapped - started,
        "boxes": found - mapped,
        "embed": done - found,
        "objects": done - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="photo sets folder (default: $SHOP_SEARCH_DEVDATA or var/devdata)")
    parser.add_argument(
        "--long-sides", default=str(ObjectFinder.long_side), help="feature-map sizes to compare"
    )
    parser.add_argument(
        "--max-area",
        type=float,
        default=ObjectFinder.max_area,
        help="the map's pixel budget as a share of long side squared (1 = none: the long side alone)",
    )
    parser.add_argument("--max-parts", type=int, help="parts of a thing kept (default: all)")
    parser.add_argument(
        "--map-precision", default=ObjectFinder.map_precision, help="the map pass: auto, bfloat16 or float32"
    )
    parser.add_argument("--per-product", type=int, default=4, help="scenes per pasted product")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--runs", type=int, default=40, help="timed queries (alternated); 0 skips timing")
    parser.add_argument("--timing-only", action="store_true", help="skip the quality figures")
    parser.add_argument("--no-catalog-objects", action="store_true", help="skip the second catalog vector")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs", flush=True)
    root = data_dir(args.data)
    scenes = build_scene_set(root, seed=args.seed, per_product=args.per_product)
    halves = {h: sum(q.half == h for q in scenes.queries) for h in ("tune", "test")}
    print(f"{len(scenes.catalog)} catalog photos; {len(scenes.queries)} scene queries {halves}", flush=True)
    with tempfile.TemporaryDirectory() as empty_home:
        config = EmbedderConfig(backbone="resnet50", torch_home=empty_home, allow_download=False)
        embedder = build_embedder(config)
    print(f"model: {embedder.label}", flush=True)
    timings = {}
    for long_side in (int(side) for side in args.long_sides.split(",")):
        finder = ObjectFinder(
            long_side=long_side,
            max_area=args.max_area,
            max_parts=args.max_parts,
            map_precision=args.map_precision,
        )
        if not args.timing_only:
            shots = product_shots(embedder, finder, scenes, root)
            print(
                f"\nProduct shots at {long_side} px: "
                + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in shots.items())
            )
            started = time.perf_counter()
            result = evaluate(embedder, finder, scenes, with_catalog_objects=not args.no_catalog_objects)
            print_quality(
                f"Feature map at {long_side} px ({time.perf_counter() - started:.0f} s):", result["rows"]
            )
        if args.runs:
            timings[long_side] = timing(embedder, finder, scenes, args.runs)
    if not timings:
        return
    print(f"\nTiming, median ms over {args.runs} scenes (1024 px long side), alternated:")
    print(f"  {'long side':<10}" + "".join(f"{name:>13}" for name in next(iter(timings.values()))))
    for long_side, parts in timings.items():
        print(f"  {long_side:<10}" + "".join(f"{value:>13.1f}" for value in parts.values()))
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
