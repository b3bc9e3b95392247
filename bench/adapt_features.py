"""Backbone features for bench_adapt.py, computed once and cached on disk, so a re-run only trains.

Each set is one .npz under the cache folder, named by what it depends on (the backbone's fingerprint,
the seeds, the counts): change any of them and it is computed again. What is cached:

- Fashion-MNIST images (test set, and a stratified part of the training set), 28x28 grey upscaled as
  bench_quality.py does;
- the photos of things (bench/devdata.py ``product_photos``): each original, bench_quality's edits of it
  (the same seeded edits, so the off-the-shelf figures are bench_quality's copy detection), and the
  site's shopper-like variants (search/relevance/variants.py): ``reshot`` re-shot ones, and ``scene``
  ones pasted into the scene set's tune-half backgrounds and, separately, its test-half backgrounds
  (bench/scene_set.py), so a projection trained for one half never sees the other half's backgrounds;
- the scene queries of bench/scene_set.py: the whole photo's vector and the vectors of the boxes the
  object finder (search.embedding.objects) shows, as a shopper's search embeds them.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from bench.bench_quality import EDITS
from bench.bench_scenes import _clipped
from bench.devdata import product_photos, scene_backgrounds
from bench.scene_set import build_scene_set
from search.embedding import Embedder, ObjectFinder, crop_fraction, embed_with_objects, to_rgb
from search.relevance.variants import Scenes, scenes_load, variant_make, variant_rng

CACHE_DEFAULT = Path(tempfile.gettempdir()) / "shop-search-adapt-bench"
MAX_PIXELS = 40_000_000  # the site's CATALOG_IMAGE_MAX_PIXELS default
HALVES = ("tune", "test")


class FeatureCache:
    def __init__(self, folder: Path, embedder: Embedder) -> None:
        self.folder, self.embedder = folder, embedder
        folder.mkdir(parents=True, exist_ok=True)

    def load_or_make(self, name: str, key: object, make: Callable[[], dict]) -> dict[str, np.ndarray]:
        digest = hashlib.sha256(json.dumps([self.embedder.fingerprint, key]).encode()).hexdigest()[:16]
        path = self.folder / f"{name}-{digest}.npz"
        if path.exists():
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        print(f"  computing {path.name} (backbone passes; cached for the next run) ...", flush=True)
        arrays = make()
        partial = path.with_suffix(".partial")
        with open(partial, "wb") as handle:
            np.savez(handle, **arrays)
        partial.replace(path)
        return arrays


def fashion_features(cache: FeatureCache, images: np.ndarray, indices: np.ndarray, name: str) -> np.ndarray:
    """(len(indices), d) vectors of these Fashion-MNIST images (greyscale made RGB, as bench_quality)."""

    def make() -> dict:
        started, vectors = time.perf_counter(), []
        for start in range(0, len(indices), 500):  # in chunks: 10k RGB pictures at once is needless memory
            chunk = indices[start : start + 500]
            vectors.append(cache.embedder.embed([to_rgb(Image.fromarray(images[i], "L")) for i in chunk]))
        seconds = time.perf_counter() - started
        return {"features": np.concatenate(vectors), "seconds": np.array(seconds), "load": _load()}

    key = [name, hashlib.sha256(np.ascontiguousarray(indices).tobytes()).hexdigest()]
    return cache.load_or_make(f"fashion-{name}", key, make)["features"]


def fashion_train_indices(labels: np.ndarray, per_class: int, seed: int = 7) -> np.ndarray:
    """A seeded, stratified part of the training set: ``per_class`` images of each class."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in range(10)])


def half_scenes(root: Path, folder: Path) -> dict[str, Scenes]:
    """The scene set's backgrounds, split as bench/scene_set.py splits them (even / odd positions), as
    the ``Scenes`` the site's variant maker takes (a folder of links per half)."""
    backgrounds = scene_backgrounds(root)
    result = {}
    for offset, half in enumerate(HALVES):
        links = folder / f"scenes-{half}"
        links.mkdir(parents=True, exist_ok=True)
        for number, path in enumerate(backgrounds[offset::2]):
            link = links / f"{number:03d}{path.suffix}"
            if not link.exists():
                link.symlink_to(path.resolve())
        result[half] = scenes_load(links)
    return result


def photo_features(cache: FeatureCache, root: Path, *, seed: int, reshot: int, scene: int) -> dict:
    """Originals, bench_quality's edits and the site's variants of every photo of a thing.

    Returned arrays: ``paths`` (n,), ``originals`` (n, d), ``edits`` (E, n, d) with ``edit_names``,
    ``variants`` (n, V, d) with ``variant_kinds`` (V,): "reshot", "scene-tune", "scene-test";
    ``make_seconds`` / ``embed_seconds`` / ``variant_count``: the cost of making and of embedding
    (decode + forward) the variants, ``load``: the 1-minute load average when they were made."""
    paths = product_photos(root)

    def make() -> dict:
        scenes = half_scenes(root, cache.folder)
        originals = [to_rgb(Image.open(path)) for path in paths]
        gallery = cache.embedder.embed(originals)
        edits = []
        for name, edit in EDITS.items():
            rng = random.Random(f"{name}-2026")  # bench_quality's seeds: the very same edited photos
            edits.append(cache.embedder.embed([edit(image, rng) for image in originals]))
        kinds = ["reshot"] * reshot + [f"scene-{half}" for half in HALVES for _ in range(scene)]
        made = embedded = 0.0
        variants = []
        for path, picture in zip(paths, originals, strict=True):
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            started = time.perf_counter()
            shots = [
                variant_make(picture, "reshot", variant_rng(seed + j, sha, "reshot"), scenes["tune"])
                for j in range(reshot)
            ]
            shots += [
                _scene_variant(picture, sha, seed, half, j, scenes) for half in HALVES for j in range(scene)
            ]
            middle = time.perf_counter()
            # Decoded as the site decodes an upload, so a variant's vector is a shopper query's.
            variants.append(
                cache.embedder.embed([cache.embedder.load(s, max_pixels=MAX_PIXELS) for s in shots])
            )
            made, embedded = made + middle - started, embedded + time.perf_counter() - middle
        return {
            "paths": np.array([str(p.relative_to(root)) for p in paths]),
            "originals": gallery,
            "edits": np.stack(edits),
            "edit_names": np.array(list(EDITS)),
            "variants": np.stack(variants),
            "variant_kinds": np.array(kinds),
            "make_seconds": np.array(made),
            "embed_seconds": np.array(embedded),
            "variant_count": np.array(len(paths) * len(kinds)),
            "load": _load(),
        }

    key = ["photos", [str(p.relative_to(root)) for p in paths], seed, reshot, scene, sorted(EDITS)]
    return cache.load_or_make("photos", key, make)


def scene_query_features(
    cache: FeatureCache, root: Path, *, seed: int, per_product: int, objects: bool
) -> dict:
    """bench/scene_set.py's queries: ``whole`` (q, d) the whole photo, ``true_box`` (q, d) the pasted
    product's own box cropped (what a perfect object finder would give), ``truth`` (q,) the true
    product's path, ``half`` (q,), ``catalog`` the catalog's paths; with ``objects`` also ``boxes``
    (B, d) and ``box_start`` (q + 1,): the boxes the object finder finds, embedded as a shopper's search
    embeds them (the finder's feature-map pass is most of the cost)."""

    def make() -> dict:
        scenes = build_scene_set(root, seed=seed, per_product=per_product)
        finder = ObjectFinder()
        wholes, true_boxes, boxes, starts = [], [], [], [0]
        for query in scenes.queries:
            found = finder.find(cache.embedder, query.image) if objects else []
            whole, vectors = embed_with_objects(cache.embedder, query.image, found)
            true_boxes.append(cache.embedder.embed([crop_fraction(query.image, _clipped(query.box))])[0])
            wholes.append(whole)
            boxes.append(vectors)
            starts.append(starts[-1] + len(vectors))
        return {
            "whole": np.stack(wholes),
            "true_box": np.stack(true_boxes),
            "boxes": np.concatenate(boxes),
            "box_start": np.array(starts),
            "truth": np.array([str(scenes.catalog_paths[q.truth].relative_to(root)) for q in scenes.queries]),
            "half": np.array([q.half for q in scenes.queries]),
            "catalog": np.array([str(p.relative_to(root)) for p in scenes.catalog_paths]),
        }

    key = ["scenes", seed, per_product, objects and _finder_key(cache.embedder)]
    return cache.load_or_make("scenes", key, make)


def _scene_variant(
    picture: Image.Image, sha: str, seed: int, half: str, j: int, scenes: dict[str, Scenes]
) -> bytes:
    """The j-th in-a-scene variant of a photo in ``half``'s backgrounds (seeded per photo, half and j):
    photo_features and scene_variant_boxes make the very same ones."""
    rng = variant_rng(seed + 100 * HALVES.index(half) + j, sha, "scene")
    return variant_make(picture, "scene", rng, scenes[half])


def _finder_key(embedder: Embedder) -> list:
    """What of the default finder changes its boxes' cached vectors: its map's size and precision (a cache
    written with a long side alone was made before the map had a pixel budget and bfloat16)."""
    finder = ObjectFinder()
    return [finder.long_side, finder.max_area, finder.bfloat16(embedder)]


def _load() -> np.ndarray:
    return np.array(os.getloadavg()[0])


def scene_variant_boxes(cache: FeatureCache, root: Path, photos: dict, *, seed: int, scene: int) -> dict:
    """The in-a-scene variants of ``photo_features`` as the shoppers' path searches them: ``boxes``
    (n, 2 x scene, d), for each variant the vector among the object finder's boxes and the whole photo
    that is closest to the photo's own original (the evidence rule (b) takes for the right product; no
    true box needed, so the site can do the same). Aligned with photo_features' scene kinds, tune half
    first. ``whole_share``: how often the whole photo was the closest."""
    paths = [root / p for p in photos["paths"]]

    def make() -> dict:
        scenes = half_scenes(root, cache.folder)
        finder = ObjectFinder()
        chosen, wholes = [], 0
        for path, original in zip(paths, photos["originals"], strict=True):
            picture = to_rgb(Image.open(path))
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            per_photo = []
            for half in HALVES:
                for j in range(scene):
                    data = _scene_variant(picture, sha, seed, half, j, scenes)
                    shot = cache.embedder.load(data, max_pixels=MAX_PIXELS)
                    whole, vectors = embed_with_objects(
                        cache.embedder, shot, finder.find(cache.embedder, shot)
                    )
                    evidence = np.concatenate([whole[None, :], vectors])
                    best = int(np.argmax(evidence @ original))
                    wholes += best == 0
                    per_photo.append(evidence[best])
            chosen.append(np.stack(per_photo))
        return {"boxes": np.stack(chosen), "whole_share": np.array(wholes / max(1, len(paths) * 2 * scene))}

    key = ["scene-variant-boxes", [str(p) for p in photos["paths"]], seed, scene, _finder_key(cache.embedder)]
    return cache.load_or_make("scene-boxes", key, make)
