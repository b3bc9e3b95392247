"""Shopper-like photos made from a catalog photo, for the relevance self-test. No Django here.

Each variant comes from one catalog photo and a random generator seeded with the run's seed, the
photo's content hash and the kind (``variant_rng``): the same seed gives the same variants whatever the
model, the order of the photos or the rest of the sample, so two models are compared on the very same
photos. What each kind does is written once, in RECIPES, and the report quotes it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from catalog.imaging import load_image

# Bump when a recipe changes: runs are compared only when they searched identical variants.
RECIPE_VERSION = 1
KINDS = ("reshot", "scene")
KIND_LABELS = {"reshot": "re-shot", "scene": "in a scene"}
RECIPES = {
    "reshot": (
        "a crop keeping 70-95 % of each side, rotated by -12..12 deg (the corners filled with the "
        "photo's edge colour), brightness x0.65-1.35 and contrast x0.8-1.2, resized to a long side of "
        "400-1000 px, a Gaussian blur of 0-1.5 px, saved as JPEG quality 35-75"
    ),
    "scene": (
        "the thing cut out of its white studio background (when the photo's border is "
        "white), relit (brightness x0.7-1.3, contrast x0.8-1.2), rotated by -15..15 deg, scaled to "
        "25-55 % of the scene's width, pasted at a random place in a scene photo (long side 800 px), "
        "blurred by 0-0.8 px, saved as JPEG quality 60-80"
    ),
}
SCENE_LONG_SIDE = 800
SCENE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
MAX_SCENE_PIXELS = 40_000_000
MASK_SIDE = 256  # the white-background mask is worked out at this size: a cut-out needs no more


class ScenesUnavailable(ValueError):
    """The configured scene folder has no photo that can be used; the message says what to fix."""


@dataclass(frozen=True)
class Scenes:
    """The backgrounds of "scene" variants: real photos, or none (then generated clutter)."""

    pictures: tuple[Image.Image, ...]
    label: str  # for the report: which backgrounds were used
    signature: str  # changes when the backgrounds change (part of what makes two runs comparable)


def scenes_load(folder: str | Path | None) -> Scenes:
    """Real scene photos from ``folder``; no folder configured means generated clutter.

    A folder that is configured but missing or without a readable photo raises ScenesUnavailable: a
    merchant who asked for real scenes must not silently get drawn ones."""
    if not folder:
        return Scenes((), "generated clutter (no scene photos configured)", f"generated-v{RECIPE_VERSION}")
    path = Path(folder)
    if not path.is_dir():
        raise ScenesUnavailable(
            f"The scene photos folder {path} does not exist (SEARCH_RELEVANCE_SCENES_DIR)."
        )
    digest, pictures = hashlib.sha256(), []
    for file in sorted(p for p in path.iterdir() if p.suffix.lower() in SCENE_SUFFIXES):
        data = file.read_bytes()
        try:
            picture = load_image(data, max_pixels=MAX_SCENE_PIXELS)
        except ValueError:
            continue  # an unreadable file is not a scene; the count in the label shows what was used
        digest.update(hashlib.sha256(data).digest())
        pictures.append(_long_side(picture, SCENE_LONG_SIDE))
    if not pictures:
        raise ScenesUnavailable(
            f"The scene photos folder {path} holds no readable photo (JPEG, PNG or WebP). Add some, or set "
            "SEARCH_RELEVANCE_SCENES_DIR to an empty value to use generated clutter."
        )
    return Scenes(tuple(pictures), f"{len(pictures)} real photos from {path}", digest.hexdigest())


def variant_rng(seed: int, content_sha256: str, kind: str) -> random.Random:
    return random.Random(f"{RECIPE_VERSION}:{seed}:{content_sha256}:{kind}")


def variant_make(picture: Image.Image, kind: str, rng: random.Random, scenes: Scenes) -> bytes:
    """The JPEG a shopper might send for this catalog photo (``picture``, RGB)."""
    if kind == "reshot":
        return _jpeg(reshot(picture, rng), rng.randint(35, 75))
    if kind == "scene":
        return _jpeg(in_scene(picture, rng, scenes), rng.randint(60, 80))
    raise ValueError(f"Unknown variant kind {kind!r}: use {', '.join(KINDS)}.")


def reshot(picture: Image.Image, rng: random.Random) -> Image.Image:
    w, h = picture.size
    cw, ch = max(8, round(w * rng.uniform(0.7, 0.95))), max(8, round(h * rng.uniform(0.7, 0.95)))
    x, y = rng.randint(0, max(0, w - cw)), rng.randint(0, max(0, h - ch))
    image = picture.crop((x, y, x + cw, y + ch))
    image = image.rotate(
        rng.uniform(-12, 12), resample=Image.Resampling.BICUBIC, expand=True, fillcolor=_edge_colour(image)
    )
    image = _relight(image, rng, brightness=(0.65, 1.35))
    image = _long_side(image, rng.randint(400, 1000))
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 1.5)))


def in_scene(picture: Image.Image, rng: random.Random, scenes: Scenes) -> Image.Image:
    scene = rng.choice(scenes.pictures).copy() if scenes.pictures else clutter_scene(rng)
    width = rng.uniform(0.25, 0.55) * scene.width
    scale = min(width / picture.width, 0.9 * scene.height / picture.height)
    size = (max(8, round(picture.width * scale)), max(8, round(picture.height * scale)))
    thing = _relight(picture.resize(size, Image.Resampling.BICUBIC), rng, brightness=(0.7, 1.3))
    mask = white_background_mask(picture).resize(size, Image.Resampling.BILINEAR)
    angle = rng.uniform(-15, 15)
    thing = thing.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    mask = mask.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)
    if thing.width > scene.width or thing.height > scene.height:  # the rotation made it bigger
        fit = min(scene.width / thing.width, scene.height / thing.height)
        size = (max(1, int(thing.width * fit)), max(1, int(thing.height * fit)))
        thing, mask = thing.resize(size, Image.Resampling.BICUBIC), mask.resize(size)
    left, top = rng.randint(0, scene.width - thing.width), rng.randint(0, scene.height - thing.height)
    scene.paste(thing, (left, top), mask)
    return scene.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 0.8)))


def white_background_mask(picture: Image.Image, *, level: int = 225) -> Image.Image:
    """L mask (at most MASK_SIDE px): 0 on the near-white background that touches the border, 255 on the
    thing. A photo whose border is mostly not white (a thing on a table) keeps a full mask."""
    small = picture.copy()
    small.thumbnail((MASK_SIDE, MASK_SIDE))
    rgb = np.asarray(small.convert("RGB"), dtype=np.int16)
    white = (rgb.min(axis=2) >= level) & (rgb.max(axis=2) - rgb.min(axis=2) <= 24)
    border = np.concatenate([white[0], white[-1], white[:, 0], white[:, -1]])
    if border.mean() < 0.6:
        return Image.new("L", small.size, 255)
    outside = _reachable_from_border(white)
    mask = Image.fromarray(np.where(outside, 0, 255).astype(np.uint8), "L")
    return mask.filter(ImageFilter.GaussianBlur(0.8))


def clutter_scene(rng: random.Random) -> Image.Image:
    """A drawn background (gradient, shapes, noise): only when no scene photos are configured."""
    width, height = SCENE_LONG_SIDE, SCENE_LONG_SIDE * 3 // 4
    top, bottom = (np.array([rng.randint(40, 215) for _ in range(3)], dtype=np.float32) for _ in range(2))
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    pixels = np.broadcast_to(top + (bottom - top) * ramp, (height, width, 3)).copy()
    image = Image.fromarray(pixels.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(25, 45)):
        x0, y0 = rng.randint(-50, width), rng.randint(-50, height)
        box = (x0, y0, x0 + rng.randint(20, 220), y0 + rng.randint(20, 220))
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        shape = rng.choice(("rectangle", "ellipse", "line"))
        if shape == "line":
            draw.line(box, fill=colour, width=rng.randint(2, 12))
        else:
            getattr(draw, shape)(box, fill=colour)
    noise = np.random.default_rng(rng.getrandbits(32)).normal(0.0, 8.0, (height, width, 3))
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.float32) + noise, 0, 255).astype(np.uint8))


def variant_thumbnail(data: bytes, size: int = 160) -> str:
    """A small JPEG of a variant as a data: URL, kept with a run for the hardest products."""
    picture = Image.open(io.BytesIO(data)).convert("RGB")
    picture.thumbnail((size, size))
    return "data:image/jpeg;base64," + base64.b64encode(_jpeg(picture, 80)).decode("ascii")


def _reachable_from_border(allowed: np.ndarray) -> np.ndarray:
    """Cells of ``allowed`` connected to the border through 4-neighbours (repeated dilation)."""
    reached = np.zeros_like(allowed)
    for edge in (np.s_[0, :], np.s_[-1, :], np.s_[:, 0], np.s_[:, -1]):
        reached[edge] = allowed[edge]
    while True:
        grown = reached.copy()
        grown[1:] |= reached[:-1]
        grown[:-1] |= reached[1:]
        grown[:, 1:] |= reached[:, :-1]
        grown[:, :-1] |= reached[:, 1:]
        grown &= allowed
        if (grown == reached).all():
            return reached
        reached = grown


def _relight(image: Image.Image, rng: random.Random, *, brightness: tuple[float, float]) -> Image.Image:
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(*brightness))
    return ImageEnhance.Contrast(image).enhance(rng.uniform(0.8, 1.2))


def _edge_colour(image: Image.Image) -> tuple[int, int, int]:
    rgb = np.asarray(image.convert("RGB"))
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    return tuple(int(v) for v in np.median(border, axis=0))


def _long_side(image: Image.Image, side: int) -> Image.Image:
    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()
