"""Catalog-adapted projection (search/embedding/adapt.py): off-the-shelf backbone vs adapted, issue 12.

    .venv/bin/python bench/bench_adapt.py [--data DIR] [--cache DIR] [--only fashion,copy,scenes]
    /usr/bin/time -v .venv/bin/python bench/bench_adapt.py --only timing     # 10k photos, alone
    .venv/bin/python bench/bench_adapt.py --only timing --timing-cosines 0.583,0.214   # training only
    ... --timing-cosines 0.583,0.214 --timing-sampled 1024,0 --timing-epochs 10 --timing-rounds 2  # compared

Model: the EfficientNet-Lite0 offline fallback the site runs here (as bench_quality.py loads it).
Backbone features are cached (bench/adapt_features.py): a re-run only trains. Every projection is
trained by ``projection_train`` on rows that are never evaluated:

- fashion: Fashion-MNIST category retrieval, 1,000 test queries against the other 9,000 test images
  (bench_quality's split and metric). Trained on a stratified part of the 60k TRAINING set only, one
  "product" per class (the catalog's category is all a photo of that set carries).
- copy: bench_quality's copy detection (its seeded edits of every photo of a thing, searched among
  all the originals). The evaluated photos are split in two folds by product; each fold is evaluated
  with a projection trained on the other photos (their originals and the site's re-shot and in-a-scene
  variants). The scene set's backgrounds are gallery and training only, never evaluated (they are the
  variants' backgrounds).
- scenes: bench_scenes' product in a scene (tune and test halves). Evaluating one half, the
  projection is trained on the catalog photos of every product that is NOT one of that half's products
  (the scene backgrounds and box_in_scene left out), with re-shot variants and variants pasted into
  the OTHER half's backgrounds. Whole photo, the true box cropped, and with --objects rule (b) (best
  evidence over the object finder's boxes, bench_scenes; a feature map per scene: slow).
Choices (the --configs compared) are read on the Fashion training set's own validation part and the
scene tune half; the Fashion test set, the copy folds and the scene test half are only reported.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.adapt_features import (  # noqa: E402
    CACHE_DEFAULT,
    FeatureCache,
    fashion_features,
    fashion_train_indices,
    photo_features,
    scene_query_features,
    scene_variant_boxes,
)
from bench.adapt_timing import backbone_cost, real_cosines, training_10k  # noqa: E402
from bench.adapt_tune import FIRST_SLICE, TRIED, copy_choice, fashion_choice, identity  # noqa: E402
from bench.bench_quality import fashion_split, precision_and_map  # noqa: E402
from bench.bench_scenes import RULES, ranks, rule_scores  # noqa: E402
from bench.devdata import (  # noqa: E402
    data_dir,
    fashion_mnist_test,
    fashion_mnist_train,
    scene_backgrounds,
)
from search.embedding import EmbedderConfig, build_embedder  # noqa: E402
from search.embedding.adapt import AdaptConfig, Projection, product_split, projection_train  # noqa: E402

CONFIGS = {"first slice": FIRST_SLICE, "default": AdaptConfig()}
SEED = 2026


def trained(
    rows: np.ndarray, products: np.ndarray, categories: np.ndarray, config: AdaptConfig
) -> Projection:
    started = time.perf_counter()
    projection = projection_train(rows, products, categories, config=config, data_version="bench")
    info = projection.trained
    print(
        f"    trained on {len(rows)} rows, {info['products']} products, {info['categories']} categories: "
        f"{info['epochs']} epochs (best {info['best_epoch']}), {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return projection


# --- Fashion-MNIST ---------------------------------------------------------------------------------


def fashion(
    cache: FeatureCache, root: Path, configs: dict[str, AdaptConfig], per_class: int, tune: bool
) -> None:
    images, labels = fashion_mnist_test(root)
    q_idx, g_idx = fashion_split(labels, 10000)
    test = fashion_features(cache, images, np.concatenate([q_idx, g_idx]), "test")
    q, g, q_lab, g_lab = test[:1000], test[1000:], labels[q_idx], labels[g_idx]
    train_images, train_labels = fashion_mnist_train(root)
    idx = fashion_train_indices(train_labels, per_class)
    train, train_lab = fashion_features(cache, train_images, idx, "train"), train_labels[idx]
    print(
        f"\nFashion-MNIST: {len(q)} test queries vs {len(g)} test images; "
        f"training set part: {len(idx)} images (one 'product' per class)"
    )
    rows = {"off-the-shelf (backbone, 1280 d)": identity}
    for name, config in configs.items():
        projection = trained(train, train_lab, train_lab, config)
        rows[f"adapted: {name} ({projection.out_dim} d)"] = projection.project
    if tune:
        fashion_choice(train, train_lab, configs, trained, SEED)
    print(f"  {'vectors':<44}{'test P@10':>11}{'test mAP':>10}")
    for label, space in rows.items():
        p10, mean_ap = precision_and_map(space(q), q_lab, space(g), g_lab)
        print(f"  {label:<44}{p10:>11.3f}{mean_ap:>10.3f}")


# --- copy detection --------------------------------------------------------------------------------


def photo_categories(paths: np.ndarray) -> np.ndarray:
    """A category per photo from its name (hammer1..9 -> hammer; a GCompris folder when the name is
    alone); -1 for a lone OpenCV / mvtb photo."""
    stems = [Path(p).stem.rstrip("0123456789").rstrip("-_") for p in paths]
    folders = [
        Path(p).parts[0] + "/" + Path(p).parts[1] if Path(p).parts[0] == "gcompris" else "" for p in paths
    ]
    names = [s if stems.count(s) > 1 else (f or None) for s, f in zip(stems, folders, strict=True)]
    known = sorted({n for n in names if n})
    return np.array([known.index(n) if n else -1 for n in names])


def training_rows(
    photos: dict, chosen: np.ndarray, kinds: set[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, product ids and category ids of the chosen photos' originals and variants of ``kinds``."""
    take = np.array([k in kinds for k in photos["variant_kinds"]])
    per_photo = 1 + int(take.sum())
    stacked = np.concatenate([photos["originals"][chosen, None], photos["variants"][chosen][:, take]], axis=1)
    categories = photo_categories(photos["paths"])
    return (
        stacked.reshape(-1, stacked.shape[-1]),
        np.repeat(chosen, per_photo),
        np.repeat(categories[chosen], per_photo),
    )


def copy_detection(photos: dict, root: Path, configs: dict[str, AdaptConfig], tune: bool) -> None:
    paths = photos["paths"]
    backgrounds = {str(p.relative_to(root)) for p in scene_backgrounds(root) if p.is_relative_to(root)}
    evaluable = np.flatnonzero([p not in backgrounds for p in paths])
    held = product_split(evaluable, held_out=0.5, seed=SEED)
    folds = [evaluable[held], evaluable[~held]]
    kinds = set(photos["variant_kinds"])
    names = list(photos["edit_names"])
    print(
        f"\nCopy detection: {len(paths)} originals in the gallery, {len(evaluable)} evaluated in 2 folds "
        f"({len(folds[0])} + {len(folds[1])} photos) x {len(names)} edits = {len(evaluable) * len(names)} "
        f"queries; training per fold: the other {len(paths) - len(folds[0])}-{len(paths) - len(folds[1])} "
        f"photos, each with {len(photos['variant_kinds'])} variants ({', '.join(sorted(kinds))})"
    )
    if tune:
        rows_of = lambda chosen: training_rows(photos, chosen, kinds)  # noqa: E731
        copy_choice(photos, folds, evaluable, rows_of, configs, trained, SEED)
    results: dict[str, dict[str, list]] = {}
    for name, config in [("off-the-shelf", None), *configs.items()]:
        per_edit: dict[str, list] = {n: [] for n in names}
        for fold in folds:
            space = identity
            if config is not None:
                others = np.setdiff1d(np.arange(len(paths)), fold)
                space = trained(*training_rows(photos, others, kinds), config).project
            gallery = space(photos["originals"])
            for e, edit in enumerate(names):
                found = _recall_rows(space(photos["edits"][e, fold]), gallery, fold)
                per_edit[edit].append(found)
        results[name] = {n: np.concatenate(v) for n, v in per_edit.items()}
    print(f"  {'vectors':<24}" + "".join(f"{n:>14}" for n in names) + f"{'all':>14}")
    for label, per_edit in results.items():
        cells = [per_edit[n] for n in names] + [np.concatenate(list(per_edit.values()))]
        print(f"  {label:<24}" + "".join(f"{np.mean(c < 1):>8.3f} /{np.mean(c < 10):.2f}" for c in cells))
    print("  (R@1 / R@10; 'all' pools every edit of every evaluated photo)")


def _recall_rows(queries: np.ndarray, gallery: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """0-based rank of each query's own original (ties against it), as bench_scenes counts it."""
    scores = queries @ gallery.T
    return (scores > scores[np.arange(len(truth)), truth][:, None]).sum(axis=1)


# --- product in a scene ----------------------------------------------------------------------------


def scenes(photos: dict, queries: dict, configs: dict[str, AdaptConfig]) -> None:
    row_of = {p: i for i, p in enumerate(photos["paths"])}
    catalog = np.array([row_of[p] for p in queries["catalog"]])
    column_of = {p: i for i, p in enumerate(queries["catalog"])}
    truth = np.array([column_of[p] for p in queries["truth"]])
    starts, objects = queries["box_start"], len(queries["boxes"]) > 0
    columns = ["whole", "true box"] + (["(b) objects"] if objects else [])
    halves = ", ".join(f"{h} {np.sum(queries['half'] == h)}" for h in ("tune", "test"))
    print(f"\nProduct in a scene: {len(catalog)} catalog photos; queries per half: {halves}")
    print(f"  {'half':<6}{'vectors':<24}{'n':>5}" + "".join(f"{c + ' R@1 / R@10':>24}" for c in columns))
    for half, other in (("tune", "test"), ("test", "tune")):
        chosen = np.flatnonzero(queries["half"] == half)
        evaluated = set(truth[chosen])
        train_photos = np.array([catalog[c] for c in range(len(catalog)) if c not in evaluated])
        for name, config in [("off-the-shelf", None), *configs.items()]:
            space = identity
            if config is not None:
                rows = training_rows(photos, train_photos, {"reshot", f"scene-{other}"})
                space = trained(*rows, config).project
            gallery = space(photos["originals"][catalog])
            found: dict[str, list[int]] = {c: [] for c in columns}
            for q in chosen:
                whole = space(queries["whole"][q : q + 1])[0]
                found["whole"].append(ranks(gallery @ whole, truth[q]))
                found["true box"].append(ranks(gallery @ space(queries["true_box"][q : q + 1])[0], truth[q]))
                if objects:
                    boxes = space(queries["boxes"][starts[q] : starts[q + 1]])
                    found["(b) objects"].append(ranks(rule_scores(RULES[1], gallery, whole, boxes), truth[q]))
            cells = "".join(
                f"{np.mean(np.array(v) < 1):>17.3f} / {np.mean(np.array(v) < 10):.3f}" for v in found.values()
            )
            print(f"  {half:<6}{name:<24}{len(chosen):>5}{cells}")
    print("  (tune: where choices are read; test: reported. true box: the pasted product's own box cropped)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="photo sets folder (default: $SHOP_SEARCH_DEVDATA or var/devdata)")
    parser.add_argument("--cache", default=str(CACHE_DEFAULT), help="where backbone features are cached")
    parser.add_argument("--only", default="fashion,copy,scenes", help="fashion,copy,scenes and/or timing")
    parser.add_argument(
        "--configs",
        default=",".join(CONFIGS),
        help=f"the projection configs compared: default and/or {', '.join(TRIED)}",
    )
    parser.add_argument(
        "--tune", action="store_true", help="also the tune figures the choice is read on (adapt_tune.py)"
    )
    parser.add_argument("--fashion-per-class", type=int, default=1000, help="training images per class")
    parser.add_argument("--reshot", type=int, default=4, help="re-shot variants per photo")
    parser.add_argument("--scene", type=int, default=4, help="in-a-scene variants per photo and half")
    parser.add_argument(
        "--objects",
        action="store_true",
        help="scenes: also the object finder's boxes (slow: a feature map each)",
    )
    parser.add_argument(
        "--scene-rows",
        choices=("whole", "boxes"),
        default="whole",
        help="copy, scenes: train on each in-a-scene variant's whole photo (as the site trains today) or on "
        "the object finder's box closest to the product's photo (what the shoppers' path searches)",
    )
    parser.add_argument(
        "--timing-cosines",
        help="timing: OWN,OTHER mean cosines (photo-variant, photo-photo) to draw the synthetic rows with, "
        "instead of reading them off the real photos' features (which needs their backbone pass first)",
    )
    parser.add_argument(
        "--timing-epochs",
        type=int,
        default=AdaptConfig.max_epochs,
        help="timing: cap the epochs (per-epoch cost)",
    )
    parser.add_argument(
        "--timing-sampled",
        default=str(AdaptConfig.sampled_products),
        help="timing: the sampled_products values compared, e.g. 1024,0 (0: every product)",
    )
    parser.add_argument("--timing-rounds", type=int, default=1, help="timing: runs of each, alternating")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    known = {"default": AdaptConfig(), **TRIED}
    unknown = [name for name in args.configs.split(",") if name not in known]
    if unknown:
        parser.error(f"unknown config(s) {', '.join(unknown)}: choose among {', '.join(known)}")
    configs = {name: known[name] for name in args.configs.split(",")}
    timing = {
        "sampled": tuple(int(value) for value in args.timing_sampled.split(",")),
        "rounds": args.timing_rounds,
    }
    print(f"load average at start: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs", flush=True)
    if args.timing_cosines:
        own, other = (float(value) for value in args.timing_cosines.split(","))
        parts.discard("timing")
        training_10k((own, other), max_epochs=args.timing_epochs, source="given (--timing-cosines)", **timing)
        if not parts & {"fashion", "copy", "scenes"}:
            print(f"load average at end: {os.getloadavg()[0]:.2f}")
            return
    root = data_dir(args.data)
    with tempfile.TemporaryDirectory() as empty_home:
        # No weights path, an empty cache, no download: the offline fallback, as bench_quality.py.
        config = EmbedderConfig(backbone="resnet50", torch_home=empty_home, allow_download=False)
        embedder = build_embedder(config)
    print(f"model: {embedder.label} ({embedder.fingerprint})", flush=True)
    cache = FeatureCache(Path(args.cache), embedder)
    if "fashion" in parts:
        fashion(cache, root, configs, args.fashion_per_class, args.tune)
    if parts & {"copy", "scenes", "timing"}:
        photos = training = photo_features(cache, root, seed=SEED, reshot=args.reshot, scene=args.scene)
        if args.scene_rows == "boxes" and parts & {"copy", "scenes"}:
            found = scene_variant_boxes(cache, root, photos, seed=SEED, scene=args.scene)
            columns = np.flatnonzero(np.char.startswith(photos["variant_kinds"].astype(str), "scene-"))
            training = {**photos, "variants": photos["variants"].copy()}  # timing keeps the real variants
            training["variants"][:, columns] = found["boxes"]
            print(
                f"training rows of the in-a-scene variants: the closest of the object finder's boxes and the "
                f"whole photo (the whole photo for {float(found['whole_share']):.0%} of them)",
                flush=True,
            )
        if "copy" in parts:
            copy_detection(training, root, configs, args.tune)
        if "scenes" in parts:
            queries = scene_query_features(cache, root, seed=SEED, per_product=4, objects=args.objects)
            scenes(training, queries, configs)
        if "timing" in parts:
            backbone_cost(photos, embedder, root)
            training_10k(real_cosines(photos), max_epochs=args.timing_epochs, source="real photos", **timing)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
