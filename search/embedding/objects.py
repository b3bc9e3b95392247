"""Find the things in a shopper's photo with the backbone the site already runs (no detector model).

One forward pass at a higher resolution (``Embedder.feature_map``: 640 px on the long side, aspect
kept, no centre crop) gives the backbone's last feature map, a grid of cells (20 x 15 for a 4:3
photo). A cell is salient when the model sees much there (channel energy, the L2 norm) AND it looks
unlike the photo's border (1 - cosine to the mean border cell: a desk, a wall, a lawn around the
thing). Regions of salient cells at several fractions of the peak give candidate boxes, each scored
by how much saliency it holds for its size; NMS removes duplicates and weak boxes are dropped. When
the whole interior is unlike the border, the photo is a product shot (one thing filling it) and the
box around all of it comes first. The caller then embeds the boxes, cropped from the full-resolution
photo, together with the whole photo in one batch (``embed_with_objects``) and ranks products by the
best evidence: each product's highest similarity over the boxes and the whole photo.

Class-agnostic: nothing here knows ImageNet classes. bench/bench_scenes.py chose every default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image

from .embedder import Embedder
from .preprocess import crop_fraction

MAX_OBJECTS = 5
LONG_SIDE = 640
LEVELS = (0.2, 0.35, 0.5, 0.65, 0.8)
MARGIN = 0.0
NMS_IOU = 0.5
MIN_SCORE = 0.1
PRODUCT_SHOT_CONTRAST = 0.8


@dataclass(frozen=True)
class ObjectBox:
    """A box that likely holds one thing, as fractions of the photo, and a confidence in 0..1."""

    x: float
    y: float
    w: float
    h: float
    score: float

    @property
    def crop(self) -> tuple[float, float, float, float]:
        """(x, y, w, h), valid for ``crop_fraction`` and the API's crop parameter."""
        return (self.x, self.y, self.w, self.h)

    def iou(self, other: ObjectBox | Sequence[float]) -> float:
        """Intersection over union with another box or an (x, y, w, h) tuple of fractions."""
        ox, oy, ow, oh = other.crop if isinstance(other, ObjectBox) else other
        ix = max(0.0, min(self.x + self.w, ox + ow) - max(self.x, ox))
        iy = max(0.0, min(self.y + self.h, oy + oh) - max(self.y, oy))
        inter = ix * iy
        union = self.w * self.h + ow * oh - inter
        return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class ObjectFinder:
    """How boxes are found (module constants are the measured defaults)."""

    max_objects: int = MAX_OBJECTS
    long_side: int = LONG_SIDE
    levels: tuple[float, ...] = LEVELS  # region thresholds, as fractions of the peak saliency
    margin: float = MARGIN  # each side grows by this fraction of the box's size
    nms_iou: float = NMS_IOU
    min_score: float = MIN_SCORE  # weaker boxes are dropped (each costs a crop embedding); the main stays
    product_shot_contrast: float = PRODUCT_SHOT_CONTRAST

    def __post_init__(self) -> None:
        if self.max_objects < 1:
            raise ValueError("max_objects must be at least 1")
        if self.long_side < 32:
            raise ValueError("long_side must be at least 32 pixels")

    def find(self, embedder: Embedder, image: Image.Image) -> list[ObjectBox]:
        """Up to ``max_objects`` boxes in ``image``, best first: one extra forward pass."""
        return self.boxes(embedder.feature_map(image, long_side=self.long_side))

    def boxes(self, features: torch.Tensor | np.ndarray) -> list[ObjectBox]:
        """Boxes from a (dim, h, w) feature map; see the module docstring."""
        grid = np.asarray(features, dtype=np.float32)
        contrast = border_contrast(grid)
        sal = _rescaled(_rescaled(energy(grid)) * _rescaled(contrast))
        if not sal.any():  # a uniform picture: nothing stands out
            return [ObjectBox(0.0, 0.0, 1.0, 1.0, 0.0)]
        candidates = self._regions(sal)
        shot = product_shot(contrast)
        if shot >= self.product_shot_contrast:
            candidates.append(_foreground_box(contrast, score=shot))
        kept = nms(candidates, self.nms_iou)[: self.max_objects]
        return kept[:1] + [box for box in kept[1:] if box.score >= self.min_score]

    def _regions(self, sal: np.ndarray) -> list[ObjectBox]:
        rows, cols = sal.shape
        total = float(sal.sum())
        found = []
        for level in self.levels:
            for cells in regions(sal >= level):
                r0, c0 = cells.min(axis=0)
                r1, c1 = cells.max(axis=0) + 1
                # Score: the share of all saliency inside the box minus the share of the photo it
                # covers, so a tight box around a standout thing wins and the whole photo scores 0.
                share = float(sal[r0:r1, c0:c1].sum()) / total
                area = (r1 - r0) * (c1 - c0) / (rows * cols)
                box = _widened(c0 / cols, r0 / rows, c1 / cols, r1 / rows, self.margin)
                found.append(ObjectBox(*box, score=float(np.clip(share - area, 0.0, 1.0))))
        return found


def energy(grid: np.ndarray) -> np.ndarray:
    """(h, w): L2 norm over channels, how strongly the model responds in each cell."""
    return np.linalg.norm(grid, axis=0)


def border_contrast(grid: np.ndarray) -> np.ndarray:
    """(h, w): 1 - cosine of each cell's features to the mean border cell (0 = looks like the border)."""
    cells = grid.reshape(grid.shape[0], -1).T
    unit = cells / (np.linalg.norm(cells, axis=1, keepdims=True) + 1e-6)
    border = _border_mask(grid.shape[1:]).ravel()
    reference = unit[border].mean(axis=0)
    reference /= np.linalg.norm(reference) + 1e-9
    return (1.0 - unit @ reference).reshape(grid.shape[1:])


def product_shot(contrast: np.ndarray) -> float:
    """Median border contrast of the inner cells: near 1 when everything inside differs from the
    border, i.e. one thing fills the photo (measured: 0.80-0.92 on such photos, scenes 95 % < 0.78)."""
    inner = ~_border_mask(contrast.shape)
    return float(np.median(contrast[inner])) if inner.any() else 0.0


def _foreground_box(contrast: np.ndarray, *, score: float) -> ObjectBox:
    """The box around every inner cell unlike the border, grown by the border cells themselves
    (which are the reference, so they can never stand out): the whole thing in a product shot."""
    rows, cols = contrast.shape
    inner = ~_border_mask(contrast.shape)
    rr, cc = np.nonzero(inner & (contrast >= 0.5 * contrast[inner].max()))
    r0, c0 = max(rr.min() - 1, 0), max(cc.min() - 1, 0)
    r1, c1 = min(rr.max() + 2, rows), min(cc.max() + 2, cols)
    return ObjectBox(c0 / cols, r0 / rows, (c1 - c0) / cols, (r1 - r0) / rows, score=min(score, 1.0))


def _border_mask(shape: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[0], mask[-1], mask[:, 0], mask[:, -1] = True, True, True, True
    return mask


def _rescaled(values: np.ndarray) -> np.ndarray:
    """0 at the photo's median (the typical cell is background), 1 at the peak."""
    floor = float(np.median(values))
    span = float(values.max()) - floor
    if span <= 1e-12:
        return np.zeros_like(values, dtype=np.float64)
    return np.clip((values - floor) / span, 0.0, 1.0)


def regions(mask: np.ndarray) -> list[np.ndarray]:
    """8-connected regions of a small boolean grid, each an (n, 2) array of (row, col) cells."""
    seen = np.zeros(mask.shape, dtype=bool)
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
    """Best score first (ties: the earlier box); a box overlapping a kept one by more than ``iou`` goes."""
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
    """Up to ``max_objects`` boxes in ``image``, best (the main object) first."""
    finder = finder or ObjectFinder()
    if max_objects != finder.max_objects:
        finder = replace(finder, max_objects=max_objects)
    return finder.find(embedder, image)


def embed_with_objects(
    embedder: Embedder, image: Image.Image, boxes: Sequence[ObjectBox]
) -> tuple[np.ndarray, np.ndarray]:
    """(whole-photo vector, (len(boxes), dim) box vectors) from one batch. Boxes are cropped from
    ``image`` as given (pass the full-resolution photo) and preprocessed exactly like queries, so
    the whole-photo vector is the one a search without objects uses."""
    crops = [crop_fraction(image, _inside(box)) for box in boxes]
    pixels = torch.stack([embedder.preprocessing.pixels(picture) for picture in (image, *crops)])
    vectors = embedder.embed_tensor(pixels)
    return vectors[0], vectors[1:]


def _inside(box: ObjectBox) -> tuple[float, float, float, float]:
    """The box as a valid crop (x, y < 1; x + w, y + h <= 1) despite float rounding."""
    x, y = min(max(box.x, 0.0), 0.999), min(max(box.y, 0.0), 0.999)
    return x, y, max(min(box.w, 1.0 - x), 1e-3), max(min(box.h, 1.0 - y), 1e-3)
