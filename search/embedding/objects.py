"""Find the things in a shopper's photo with the backbone the site already runs (no detector model).

One forward pass at a higher resolution (``Embedder.feature_map``: 448 px on the long side, aspect
kept, no centre crop) gives the last feature map; the channel energy (L2 norm) of each cell shows
where the model sees something. Energy above a few fractions of its peak, in connected regions,
gives boxes; boxes are widened by a margin, scored, de-duplicated (NMS) and the whole photo is
always one candidate. The caller then embeds the boxes, cropped from the full-resolution photo,
and the whole photo in one batch (``embed_with_objects``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from .embedder import Embedder
from .preprocess import crop_fraction

MAX_OBJECTS = 5
LONG_SIDE = 448
LEVELS = (0.5,)
MARGIN = 0.15
NMS_IOU = 0.5


@dataclass(frozen=True)
class ObjectBox:
    """A box that likely holds one thing, as fractions of the photo, and how sure we are (0..1)."""

    x: float
    y: float
    w: float
    h: float
    score: float

    @property
    def crop(self) -> tuple[float, float, float, float]:
        return (self.x, self.y, self.w, self.h)

    def iou(self, other: ObjectBox | Sequence[float]) -> float:
        ox, oy, ow, oh = other.crop if isinstance(other, ObjectBox) else other
        ix = max(0.0, min(self.x + self.w, ox + ow) - max(self.x, ox))
        iy = max(0.0, min(self.y + self.h, oy + oh) - max(self.y, oy))
        inter = ix * iy
        union = self.w * self.h + ow * oh - inter
        return inter / union if union > 0 else 0.0


WHOLE_PHOTO = (0.0, 0.0, 1.0, 1.0)


@dataclass(frozen=True)
class ObjectFinder:
    """How boxes are found; the defaults are what bench/bench_scenes.py chose."""

    max_objects: int = MAX_OBJECTS
    long_side: int = LONG_SIDE
    levels: tuple[float, ...] = LEVELS  # region thresholds, as fractions of the peak saliency
    margin: float = MARGIN  # each side grows by this fraction of the box's size
    nms_iou: float = NMS_IOU
    background: str = "median"  # what saliency 0 means: "median" energy or "zero"

    def find(self, embedder: Embedder, image: Image.Image) -> list[ObjectBox]:
        return self.boxes(saliency(embedder.feature_map(image, long_side=self.long_side), self.background))

    def boxes(self, sal: np.ndarray) -> list[ObjectBox]:
        """Up to ``max_objects`` boxes, best first, from an (h, w) saliency map in 0..1."""
        if self.max_objects < 1:
            raise ValueError("max_objects must be at least 1")
        rows, cols = sal.shape
        candidates = []
        for level in self.levels:
            for cells in regions(sal >= level):
                r, c = cells[:, 0], cells[:, 1]
                box = _widened(
                    c.min() / cols, r.min() / rows, (c.max() + 1) / cols, (r.max() + 1) / rows, self.margin
                )
                candidates.append(ObjectBox(*box, score=float(sal[r, c].max())))
        candidates.append(ObjectBox(*WHOLE_PHOTO, score=0.0))
        return nms(candidates, self.nms_iou)[: self.max_objects]


def saliency(features: torch.Tensor, background: str = "median") -> np.ndarray:
    """(h, w) in 0..1: each cell's channel energy (L2 norm), 1 at the peak, 0 at the background level."""
    energy = torch.linalg.vector_norm(features.float(), dim=0).numpy().astype(np.float64)
    floor = float(np.median(energy)) if background == "median" else 0.0
    span = energy.max() - floor
    if span <= 0:
        return np.zeros_like(energy)
    return np.clip((energy - floor) / span, 0.0, 1.0)


def regions(mask: np.ndarray) -> list[np.ndarray]:
    """8-connected regions of a small boolean grid, each as an (n, 2) array of (row, col) cells."""
    seen = np.zeros_like(mask, dtype=bool)
    rows, cols = mask.shape
    found = []
    for start in zip(*np.nonzero(mask), strict=True):
        if seen[start]:
            continue
        seen[start] = True
        stack, cells = [start], []
        while stack:
            r, c = stack.pop()
            cells.append((r, c))
            for nr in range(max(r - 1, 0), min(r + 2, rows)):
                for nc in range(max(c - 1, 0), min(c + 2, cols)):
                    if mask[nr, nc] and not seen[nr, nc]:
                        seen[nr, nc] = True
                        stack.append((nr, nc))
        found.append(np.array(cells))
    return found


def _widened(x0: float, y0: float, x1: float, y1: float, margin: float) -> tuple[float, float, float, float]:
    dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
    x0, y0, x1, y1 = max(0.0, x0 - dx), max(0.0, y0 - dy), min(1.0, x1 + dx), min(1.0, y1 + dy)
    return x0, y0, x1 - x0, y1 - y0


def nms(boxes: list[ObjectBox], iou: float) -> list[ObjectBox]:
    """Best score first; a box overlapping a kept one by more than ``iou`` is dropped."""
    kept: list[ObjectBox] = []
    for box in sorted(boxes, key=lambda b: -b.score):
        if all(box.iou(other) <= iou for other in kept):
            kept.append(box)
    return kept


def find_objects(
    embedder: Embedder,
    image: Image.Image,
    *,
    max_objects: int = MAX_OBJECTS,
    finder: ObjectFinder | None = None,
) -> list[ObjectBox]:
    """Up to ``max_objects`` boxes in ``image``, best first (see the module docstring)."""
    finder = finder or ObjectFinder()
    if max_objects != finder.max_objects:
        finder = ObjectFinder(**{**finder.__dict__, "max_objects": max_objects})
    return finder.find(embedder, image)


def embed_with_objects(
    embedder: Embedder, image: Image.Image, boxes: Sequence[ObjectBox]
) -> tuple[np.ndarray, np.ndarray]:
    """(whole-photo vector, (len(boxes), dim) box vectors), all in one batch. Boxes are cropped from
    ``image`` as given (pass the full-resolution photo) and preprocessed exactly like queries."""
    crops = [crop_fraction(image, _inside(box)) for box in boxes]
    vectors = embedder.embed([image, *crops])
    return vectors[0], vectors[1:]


def _inside(box: ObjectBox) -> tuple[float, float, float, float]:
    """The box as a valid crop (x, y < 1; x + w, y + h <= 1) despite float rounding."""
    x, y = min(max(box.x, 0.0), 0.999), min(max(box.y, 0.0), 0.999)
    return x, y, max(min(box.w, 1.0 - x), 1e-3), max(min(box.h, 1.0 - y), 1e-3)
