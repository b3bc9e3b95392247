"""Other ways to rank a scene's products from the same evidence, on bench_scenes' queries (issue 8).

    .venv/bin/python bench/bench_scene_rules.py [--data DIR] [--cache FILE] [--crops]

The object finder's evidence for every scene query (bench/scene_set.py, seed 2026) is computed once
and cached (``--cache``, default in the temp folder): the 640-px feature map, the finder's boxes, the
whole photo's and each box's vector, and the catalog's vectors. Every rule below then runs in seconds,
so a new idea is tried on the cache, not on a 15-minute bench run. ``--crops`` adds the rules that
need more crops embedded (candidate windows, a fixed grid): one more pass over the scenes, cached too.

Rules compared with the site's rule (b) "best evidence" (each product's best similarity over the boxes
and the whole photo, search/services/ranking.py):
- window: each of (b)'s top 20 candidates scored by its best window of the feature map, the map's cells
  average-pooled over every window of at least 2x2 cells with integral images (approximate max-pooling
  localisation, Tolias et al. 2016); "max" keeps max(b, window), "sum" b + window for the top 20.
- penalties: the whole photo's similarity lowered by a, each box's by b x its rank.
- calibration: each evidence's similarities minus the mean of its top k over the catalog.
- agreement: best evidence + 0.2 x the second best.
- with --crops: the top K candidates' best windows cropped from the photo and embedded ("own crop":
  max(b, the candidate's own window)), the same crops as proposals for every product, and a 3x3 grid of
  half-size windows as proposals.
Choices are read on the tune half; the test half is only reported (bench_scenes' split).
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_scenes import ranks  # noqa: E402
from bench.devdata import data_dir  # noqa: E402
from bench.scene_set import build_scene_set  # noqa: E402
from search.embedding import EmbedderConfig, build_embedder, crop_fraction  # noqa: E402
from search.embedding.objects import ObjectFinder, embed_with_objects  # noqa: E402

CACHE_DEFAULT = Path(tempfile.gettempdir()) / "shop-search-scene-rules.pkl"
GRID = [(x, y, 0.5, 0.5) for x in (0.0, 0.25, 0.5) for y in (0.0, 0.25, 0.5)]
CANDIDATES = 20


def evidence(photo_sets: str | None, cache: Path, with_crops: bool) -> dict:
    """The cached evidence (computed on first use, crops added when asked). The photo sets are read
    (and fetched, if missing) only when the cache lacks what is asked."""
    data = pickle.loads(cache.read_bytes()) if cache.exists() else None
    if data is not None and (data.get("crops") or not with_crops):
        return data
    scenes = build_scene_set(data_dir(photo_sets), seed=2026)
    with tempfile.TemporaryDirectory() as empty_home:
        embedder = build_embedder(
            EmbedderConfig(backbone="resnet50", torch_home=empty_home, allow_download=False)
        )
    print(f"model: {embedder.label}; {len(scenes.queries)} queries", flush=True)
    if data is None:
        data = {"catalog": embedder.embed(scenes.catalog), "rows": []}
        finder = ObjectFinder()
        for query in scenes.queries:
            grid = finder.feature_map(embedder, query.image).numpy()
            boxes = finder.boxes(grid)
            whole, vectors = embed_with_objects(embedder, query.image, boxes)
            data["rows"].append(
                {
                    "half": query.half,
                    "truth": query.truth,
                    "map": grid.astype(np.float16),
                    "whole": whole,
                    "boxes": vectors,
                }
            )
    if with_crops:
        data["crops"] = [
            _crops(embedder, query.image, row, data["catalog"])
            for query, row in zip(scenes.queries, data["rows"], strict=True)
        ]
    cache.write_bytes(pickle.dumps(data))
    return data


def _crops(embedder, image, row: dict, catalog: np.ndarray) -> dict:
    top = np.argsort(-best_evidence(row, catalog))[:CANDIDATES]
    _, windows = window_scores(row["map"], catalog[top])
    _, rows, cols = row["map"].shape
    boxes = [(x0 / cols, y0 / rows, (x1 - x0) / cols, (y1 - y0) / rows) for y0, x0, y1, x1 in windows]
    vectors = embedder.embed([crop_fraction(image, box) for box in boxes + GRID])
    return {"top": top, "own": vectors[: len(boxes)], "grid": vectors[len(boxes) :]}


def best_evidence(row: dict, catalog: np.ndarray) -> np.ndarray:
    """Rule (b): each product's best similarity over the whole photo and the boxes."""
    return np.maximum(catalog @ row["whole"], (catalog @ row["boxes"].T).max(axis=1))


_WINDOWS: dict[tuple[int, int], np.ndarray] = {}


def window_scores(grid: np.ndarray, vectors: np.ndarray, min_cells: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Each vector's best cosine with an average-pooled window of the map: ((n,), (n, 4) y0 x0 y1 x1)."""
    dim, rows, cols = grid.shape
    if (rows, cols) not in _WINDOWS:
        _WINDOWS[(rows, cols)] = np.array(
            [
                (y0, x0, y1, x1)
                for y0 in range(rows)
                for y1 in range(y0 + min_cells, rows + 1)
                for x0 in range(cols)
                for x1 in range(x0 + min_cells, cols + 1)
            ]
        )
    windows = _WINDOWS[(rows, cols)]
    y0, x0, y1, x1 = windows.T
    cells = grid.astype(np.float32).reshape(dim, rows * cols)
    summed = np.zeros((rows + 1, cols + 1, dim), np.float32)
    summed[1:, 1:] = cells.T.reshape(rows, cols, dim).cumsum(0).cumsum(1)
    norms = np.linalg.norm(summed[y1, x1] - summed[y0, x1] - summed[y1, x0] + summed[y0, x0], axis=1) + 1e-6
    dots = np.zeros((len(vectors), rows + 1, cols + 1), np.float32)
    dots[:, 1:, 1:] = (vectors @ cells).reshape(-1, rows, cols).cumsum(1).cumsum(2)
    cosines = (dots[:, y1, x1] - dots[:, y0, x1] - dots[:, y1, x0] + dots[:, y0, x0]) / norms
    return cosines.max(axis=1), windows[cosines.argmax(axis=1)]


def rules(catalog: np.ndarray, with_crops: bool) -> dict[str, Callable[[dict, dict | None], np.ndarray]]:
    def windowed(combine: str):
        def rule(row: dict, _crops: dict | None) -> np.ndarray:
            scores = best_evidence(row, catalog)
            top = np.argsort(-scores)[:CANDIDATES]
            found, _ = window_scores(row["map"], catalog[top])
            out = scores.copy()
            out[top] = np.maximum(scores[top], found) if combine == "max" else scores[top] + found + 10
            return out

        return rule

    def stacked(row: dict) -> np.ndarray:
        return np.concatenate([(catalog @ row["whole"])[:, None], catalog @ row["boxes"].T], axis=1)

    def penalised(row: dict, _crops: dict | None) -> np.ndarray:
        boxes = catalog @ row["boxes"].T - 0.01 * np.arange(row["boxes"].shape[0])
        return np.maximum(catalog @ row["whole"] - 0.04, boxes.max(axis=1))

    def calibrated(row: dict, _crops: dict | None) -> np.ndarray:
        sims = stacked(row)
        return (sims - np.sort(sims, axis=0)[-20:].mean(axis=0)).max(axis=1)

    def agreement(row: dict, _crops: dict | None) -> np.ndarray:
        ordered = np.sort(stacked(row), axis=1)
        return ordered[:, -1] + 0.2 * ordered[:, -2]

    table = {
        "(b) best evidence": lambda row, _crops: best_evidence(row, catalog),
        "window, max": windowed("max"),
        "window, sum": windowed("sum"),
        "penalties a=0.04 b=0.01": penalised,
        "calibration k=20": calibrated,
        "agreement 0.2": agreement,
    }
    if with_crops:

        def own_crop(k: int):
            def rule(row: dict, crops: dict) -> np.ndarray:
                scores = best_evidence(row, catalog)
                top = crops["top"][:k]
                scores[top] = np.maximum(scores[top], np.einsum("kd,kd->k", catalog[top], crops["own"][:k]))
                return scores

            return rule

        def proposals(key: str, k: int | None):
            def rule(row: dict, crops: dict) -> np.ndarray:
                extra = crops[key][:k] if k else crops[key]
                return np.maximum(best_evidence(row, catalog), (catalog @ extra.T).max(axis=1))

            return rule

        table |= {
            "own crop, top 3": own_crop(3),
            "own crop, top 10": own_crop(10),
            "candidate windows as proposals, 5": proposals("own", 5),
            "3x3 grid as proposals": proposals("grid", None),
        }
    return table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="photo sets folder (default: $SHOP_SEARCH_DEVDATA or var/devdata)")
    parser.add_argument("--cache", type=Path, default=CACHE_DEFAULT)
    parser.add_argument("--crops", action="store_true", help="also the rules that embed more crops")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs", flush=True)
    data = evidence(args.data, args.cache, args.crops)
    catalog, crops = data["catalog"], data.get("crops") or [None] * len(data["rows"])
    print(f"\n{'rule':<38}{'tune R@1 / R@10':>18}{'test R@1 / R@10':>18}")
    for name, rule in rules(catalog, args.crops).items():
        found = {"tune": [], "test": []}
        for row, crop in zip(data["rows"], crops, strict=True):
            found[row["half"]].append(ranks(rule(row, crop), row["truth"]))
        cells = "".join(
            f"{np.mean(np.array(found[h]) < 1):>11.3f} /{np.mean(np.array(found[h]) < 10):>5.3f}"
            for h in found
        )
        print(f"{name:<38}{cells}", flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
