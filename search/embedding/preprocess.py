"""Turn an RGB image into the model's input tensor. The same code serves indexing and queries."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

# Bump when the pixels fed to the model change for the same settings: it is part of the model
# fingerprint, so vectors made the old way are never compared with vectors made the new way.
# 2: the centre crop resamples only the cropped box (rounding moves up to a few % of values by
# one step in 255; vectors keep cosine >= 0.9999 to version 1's).
PREPROCESS_VERSION = 2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """Resize (shorter side) + centre crop, or a plain resize to a square when ``center_crop`` is off."""

    resize: int = 256
    size: int = 224
    center_crop: bool = True
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if self.size <= 0 or self.resize <= 0:
            raise ValueError("SEARCH_IMAGE_SIZE and SEARCH_RESIZE must be positive")
        if self.center_crop and self.resize < self.size:
            raise ValueError(
                f"SEARCH_RESIZE ({self.resize}) must be at least SEARCH_IMAGE_SIZE ({self.size})"
            )

    @property
    def tag(self) -> str:
        """Short text for the fingerprint: version, sizes and mode (normalisation goes with the backbone)."""
        shape = f"r{self.resize}c{self.size}" if self.center_crop else f"sq{self.size}"
        return f"p{PREPROCESS_VERSION}-{shape}"

    def fit(self, image: Image.Image) -> Image.Image:
        """The model-sized RGB picture (also handy to show what the model saw)."""
        if not self.center_crop:
            return image.resize((self.size, self.size), Image.Resampling.BILINEAR)
        # An antialiased resize of the shorter side to ``resize`` followed by a centre crop
        # (torchvision's sizes and offsets), but Pillow resamples only the cropped box: about half
        # the work for a 3:2 photo and no intermediate image. Same filter positions; only rounding
        # of the filter weights differs, moving a few values by one step.
        width, height = image.size
        new_w, new_h = _shorter_side_to(width, height, self.resize)
        left, top = round((new_w - self.size) / 2), round((new_h - self.size) / 2)
        scale_x, scale_y = width / new_w, height / new_h
        box = (
            left * scale_x,
            top * scale_y,
            (left + self.size) * scale_x,
            (top + self.size) * scale_y,
        )
        return image.resize((self.size, self.size), Image.Resampling.BILINEAR, box=box)

    def pixels(self, image: Image.Image) -> torch.Tensor:
        """(3, size, size) uint8: the fitted picture before normalisation.

        Decoding threads stop here: ``normalize`` then runs once on the whole batch, because small
        per-image float ops in several threads each wake torch's own thread pool and fight the
        model for the same cores.
        """
        rgb = image if image.mode == "RGB" else image.convert("RGB")  # convert() would copy
        array = np.array(self.fit(rgb), dtype=np.uint8)
        return torch.from_numpy(array).permute(2, 0, 1)

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 pixels, (3, H, W) or (n, 3, H, W), to float32 normalised with mean/std."""
        mean = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        # Same operations in the same order as ToTensor + Normalize: bit-identical values.
        return pixels.to(torch.float32).div_(255.0).sub_(mean).div_(std)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        """(3, size, size) float32, normalised."""
        return self.normalize(self.pixels(image))


def _shorter_side_to(width: int, height: int, side: int) -> tuple[int, int]:
    """Output size of torchvision's ``resize(image, side)``: shorter side = ``side``, long side floored."""
    if width <= height:
        return side, int(side * height / width)
    return int(side * width / height), side


def crop_fraction(image: Image.Image, crop: Sequence[float]) -> Image.Image:
    """Crop ``(x, y, w, h)`` given as fractions of the image's width and height (0..1).

    Raises ValueError with a message for the user when the box is malformed or leaves the image.
    """
    x, y, w, h = _validated_crop(crop)
    width, height = image.size
    left, top = round(x * width), round(y * height)
    right = min(width, max(left + 1, round((x + w) * width)))
    bottom = min(height, max(top + 1, round((y + h) * height)))
    return image.crop((left, top, right, bottom))


_CROP_SLACK = 1e-6  # fractions computed in a browser may overshoot 1.0 by a rounding error


def _validated_crop(crop: Sequence[float]) -> tuple[float, float, float, float]:
    try:
        values = tuple(float(v) for v in crop)
    except (TypeError, ValueError) as exc:
        raise ValueError("crop must be four numbers: x, y, width, height (fractions 0..1)") from exc
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ValueError("crop must be four numbers: x, y, width, height (fractions 0..1)")
    x, y, w, h = values
    if not (0 <= x < 1 and 0 <= y < 1):
        raise ValueError("crop x and y must be fractions from 0 up to (not including) 1")
    if not (0 < w <= 1 and 0 < h <= 1):
        raise ValueError("crop width and height must be fractions greater than 0 and at most 1")
    if x + w > 1 + _CROP_SLACK or y + h > 1 + _CROP_SLACK:
        raise ValueError("crop box goes outside the image (x + width and y + height must be at most 1)")
    return x, y, w, h
