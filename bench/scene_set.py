"""The "product in a scene" query set: real catalog photos pasted into real background photos.

Each query pastes one catalog photo of a thing (GCompris tools and household objects) into a real
background that is not in the catalog (bench/devdata.py's ``scene_backgrounds``): scaled to 15-60 %
of the scene's width, rotated by -15..15 deg, relit (brightness x0.7-1.3, contrast x0.8-1.2), at a
random place, and the scene saved as JPEG q60-80. A product photographed on white is cut out of its
white background first (the white that touches the photo's border), as a shopper's photo shows the
thing on a desk, not on a white card. The true box is the bounding box of the pasted pixels.

Products and backgrounds are each split in two halves (even/odd positions): "tune" queries use only
tune products in tune backgrounds, "test" queries only the others, so a choice made on "tune" is
checked on photos and backgrounds it never saw. The real OpenCV pair box.png -> box_in_scene.png
is one more "test" query (its box was read off the photo by hand).
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from bench.devdata import product_photos, scene_backgrounds, scene_products
from search.embedding import to_rgb

SCENE_LONG_SIDE = 1024  # a phone photo after the upload's own downscale; also keeps the run short
SCENES_PER_PRODUCT = 4
# box.png in opencv/box_in_scene.png (512x384): x 97-268, y 160-300 px, read off the photo.
BOX_IN_SCENE_TRUTH = (97 / 512, 160 / 384, 171 / 512, 140 / 384)


@dataclass
class SceneQuery:
    name: str
    image: Image.Image
    truth: int  # the pasted product's row in the catalog
    box: tuple[float, float, float, float]  # true box, fractions of the scene (x, y, w, h)
    half: str  # "tune" or "test"


@dataclass
class SceneSet:
    catalog_paths: list[Path]
    catalog: list[Image.Image]
    queries: list[SceneQuery]


def build_scene_set(root: Path, *, seed: int = 2026, per_product: int = SCENES_PER_PRODUCT) -> SceneSet:
    backgrounds = scene_backgrounds(root)
    excluded = set(backgrounds) | {root / "opencv" / "box_in_scene.png"}
    catalog_paths = [path for path in product_photos(root) if path not in excluded]
    row = {path: i for i, path in enumerate(catalog_paths)}
    catalog = [to_rgb(Image.open(path)) for path in catalog_paths]
    rng = random.Random(seed)
    queries = []
    for index, product_path in enumerate(scene_products(root)):
        half = "tune" if index % 2 == 0 else "test"
        own_backgrounds = backgrounds[index % 2 :: 2]
        product = catalog[row[product_path]]
        for bg_path in rng.sample(own_backgrounds, per_product):
            background = fit_background(to_rgb(Image.open(bg_path)), rng)
            scene, box = paste(product, background, rng)
            name = f"{product_path.stem} in {bg_path.stem}"
            queries.append(SceneQuery(name, scene, row[product_path], box, half))
    box_scene = to_rgb(Image.open(root / "opencv" / "box_in_scene.png"))
    queries.append(
        SceneQuery(
            "box in box_in_scene", box_scene, row[root / "opencv" / "box.png"], BOX_IN_SCENE_TRUTH, "test"
        )
    )
    return SceneSet(catalog_paths, catalog, queries)


def fit_background(image: Image.Image, rng: random.Random) -> Image.Image:
    """Long side SCENE_LONG_SIDE; one scene in three is cropped to portrait 3:4, as phones shoot."""
    if rng.random() < 1 / 3 and image.width > image.height:
        width = round(image.height * 3 / 4)
        left = rng.randint(0, image.width - width)
        image = image.crop((left, 0, left + width, image.height))
    scale = SCENE_LONG_SIDE / max(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)


def paste(
    product: Image.Image, background: Image.Image, rng: random.Random
) -> tuple[Image.Image, tuple[float, float, float, float]]:
    """The scene (after a JPEG round trip) and the true box of the pasted product in it."""
    mask = white_background_mask(product)
    width = rng.uniform(0.15, 0.60) * background.width
    scale = min(width / product.width, 0.9 * background.height / product.height)
    size = (max(8, round(product.width * scale)), max(8, round(product.height * scale)))
    thing = relight(product.resize(size, Image.Resampling.BICUBIC), rng)
    mask = mask.resize(size, Image.Resampling.BILINEAR)
    angle = rng.uniform(-15, 15)
    thing = thing.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    mask = mask.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)
    if thing.width > background.width or thing.height > background.height:  # rotation grew it
        shrink = min(background.width / thing.width, background.height / thing.height)
        new = (int(thing.width * shrink), int(thing.height * shrink))
        thing, mask = thing.resize(new, Image.Resampling.BICUBIC), mask.resize(new, Image.Resampling.BILINEAR)
    left = rng.randint(0, background.width - thing.width)
    top = rng.randint(0, background.height - thing.height)
    scene = background.copy()
    scene.paste(thing, (left, top), mask)
    x0, y0, x1, y1 = mask.point(lambda v: 255 if v >= 128 else 0).getbbox()
    box = (
        (left + x0) / scene.width,
        (top + y0) / scene.height,
        (x1 - x0) / scene.width,
        (y1 - y0) / scene.height,
    )
    return jpeg_round_trip(scene, rng.randint(60, 80)), box


def white_background_mask(image: Image.Image, *, level: int = 225) -> Image.Image:
    """L mask: 0 on near-white pixels connected to the border (the studio background), 255 elsewhere.

    Photos whose border is mostly not white (a thing on a table, a lifestyle shot) keep a full mask.
    """
    rgb = np.asarray(image, dtype=np.int16)
    white = (rgb.min(axis=2) >= level) & (rgb.max(axis=2) - rgb.min(axis=2) <= 24)
    border = np.concatenate([white[0], white[-1], white[:, 0], white[:, -1]])
    if border.mean() < 0.6:
        return Image.new("L", image.size, 255)
    outside = flood_from_border(white)
    mask = Image.fromarray(np.where(outside, 0, 255).astype(np.uint8), "L")
    return mask.filter(ImageFilter.GaussianBlur(1.0))


def flood_from_border(allowed: np.ndarray) -> np.ndarray:
    """Cells of ``allowed`` reachable from the border through 4-neighbours, by repeated dilation."""
    reached = np.zeros_like(allowed)
    reached[0], reached[-1], reached[:, 0], reached[:, -1] = (
        allowed[0],
        allowed[-1],
        allowed[:, 0],
        allowed[:, -1],
    )
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


def relight(image: Image.Image, rng: random.Random) -> Image.Image:
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.7, 1.3))
    return ImageEnhance.Contrast(image).enhance(rng.uniform(0.8, 1.2))


def jpeg_round_trip(image: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
