"""Find the things in a shopper's photo with the backbone the site already runs (no detector model).

One forward pass at a higher resolution (``Embedder.feature_map``: 640 px on the long side, aspect
kept, no centre crop, with at most a 4:3 photo's pixels: a square photo is mapped at 544 x 544) gives
the backbone's last feature map, a grid of cells (20 x 15 for a 4:3 photo). A cell is salient when
the model sees much there (channel energy, the L2 norm) AND it looks unlike the photo's border
(1 - cosine to the mean border cell: a desk, a wall, a lawn around the thing). Regions of salient
cells at several fractions of the peak give candidate boxes, each scored by how much saliency it
holds for its size times how unlike its surroundings it looks (the ring of cells around it), so a
whole thing beats a piece of it or a patch of a larger surface; NMS removes duplicates and weak boxes
are dropped.

A product shot is told apart from a scene by its backdrop: when the border cells are alike (a studio
white, a table top) or everything inside differs from the border (one thing filling the photo), each
region of cells clearly unlike the backdrop is one thing and comes first. A box mostly inside such a
thing is a part of it (a hammer's head, its handle): it stays in the list, marked ``part``, so its
crop still counts as evidence in the ranking (it may be something lying on the thing), but the page
and the API do not show it as a thing of its own: one product on a plain backdrop gives one box.

The caller then embeds the boxes, cropped from the full-resolution photo, together with the whole
photo in one batch (``embed_with_objects``) and ranks products by the best evidence: each product's
highest similarity over the boxes and the whole photo.

Class-agnostic: nothing here knows ImageNet classes. bench/bench_scenes.py chose every default on the
tune half of its scenes and on the dev sets' product photos (docs/benchmarks.md, "Product in a scene").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image

from .embedder import Embedder, bfloat16_is_fast
from .preprocess import crop_fraction

MAX_OBJECTS = 5
LONG_SIDE = 640
MAX_AREA = 0.75
MAP_PRECISIONS = ("auto", "bfloat16", "float32")
LEVELS = (0.2, 0.35, 0.5, 0.65, 0.8)
MARGIN = 0.0
NMS_IOU = 0.5
MIN_SCORE = 0.02
PRODUCT_SHOT_CONTRAST = 0.8
PLAIN_BACKGROUND = 0.7
FOREGROUND = 0.6
MIN_THING_SHARE = 0.1
PART_INSIDE = 0.7


@dataclass(frozen=True)
class ObjectBox:
    """A box that likely holds one thing, as fractions of the photo, and a confidence in 0..1."""

    x: float
    y: float
    w: float
    h: float
    score: float
    part: bool = False  # part of a thing on a plain backdrop: evidence for the ranking, not a thing to show

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
    max_area: float | None = MAX_AREA  # the map holds at most this share of long_side² pixels
    # The map pass in bfloat16 ("auto": where the CPU runs it natively; ~2.6x faster here, near-same boxes:
    # docs/benchmarks.md). Only the map: box crops and the whole photo are embedded in float32 as ever.
    map_precision: str = "auto"
    levels: tuple[float, ...] = LEVELS  # region thresholds, as fractions of the peak saliency
    margin: float = MARGIN  # each side grows by this fraction of the box's size
    nms_iou: float = NMS_IOU
    min_score: float = MIN_SCORE  # weaker boxes are dropped (each costs a crop embedding); the main stays
    product_shot_contrast: float = PRODUCT_SHOT_CONTRAST
    plain_background: float = PLAIN_BACKGROUND  # ``plain_backdrop`` from which the photo is a product shot
    foreground: float = FOREGROUND  # there, a cell this unlike the backdrop (x the most unlike) is a thing's
    min_thing_share: float = MIN_THING_SHARE  # ... in a region holding at least this share of that contrast
    part_inside: float = PART_INSIDE  # a box with this share of its area inside a thing is a part of it
    max_parts: int | None = None  # parts kept (the best scoring; each costs a crop embedding); None: all

    def __post_init__(self) -> None:
        if self.max_objects < 1:
            raise ValueError("max_objects must be at least 1")
        if self.long_side < 32:
            raise ValueError("long_side must be at least 32 pixels")
        if self.max_area is not None and not 0 < self.max_area <= 1:
            raise ValueError("max_area must be in (0, 1]")
        if self.max_parts is not None and self.max_parts < 0:
            raise ValueError("max_parts must be 0 or more")
        if self.map_precision not in MAP_PRECISIONS:
            raise ValueError(f"map_precision must be one of {', '.join(MAP_PRECISIONS)}")

    def find(self, embedder: Embedder, image: Image.Image) -> list[ObjectBox]:
        """Up to ``max_objects`` boxes in ``image``, best first: one extra forward pass."""
        return self.boxes(self.feature_map(embedder, image))

    def feature_map(self, embedder: Embedder, image: Image.Image) -> torch.Tensor:
        """The map the boxes are read from: one forward pass at this finder's size and precision."""
        return embedder.feature_map(
            image, long_side=self.long_side, max_pixels=self.max_pixels, bfloat16=self.bfloat16(embedder)
        )

    def bfloat16(self, embedder: Embedder) -> bool:
        if self.map_precision == "auto":
            return bfloat16_is_fast(embedder.device)
        return self.map_precision == "bfloat16"

    @property
    def max_pixels(self) -> int | None:
        """The feature-map pass's pixel budget: a square photo is mapped with the pixels of a 4:3 one
        (544 x 544 rather than 640 x 640 by default), so it costs what a 4:3 photo costs."""
        return None if self.max_area is None else round(self.max_area * self.long_side**2)

    def boxes(self, features: torch.Tensor | np.ndarray) -> list[ObjectBox]:
        """Boxes from a (dim, h, w) feature map; see the module docstring."""
        grid = np.asarray(features, dtype=np.float32)
        unit = grid / (np.linalg.norm(grid, axis=0, keepdims=True) + 1e-6)
        contrast = border_contrast(unit)
        sal = _rescaled(_rescaled(energy(grid)) * _rescaled(contrast))
        if not sal.any():  # a uniform picture: nothing stands out
            return [ObjectBox(0.0, 0.0, 1.0, 1.0, 0.0)]
        kept = nms(self._regions(sal, unit), self.nms_iou)[: self.max_objects]
        kept = kept[:1] + [box for box in kept[1:] if box.score >= self.min_score]
        filled = product_shot(contrast) >= self.product_shot_contrast
        if filled or plain_backdrop(contrast) >= self.plain_background:
            kept = self._with_things(kept, self._things(contrast, filled=filled))
        return kept

    def _with_things(self, kept: list[ObjectBox], things: list[ObjectBox]) -> list[ObjectBox]:
        """Things first among the boxes; a box mostly inside a thing is a part of it (a hammer's head,
        its handle): still embedded and ranked, as it may also be something lying on it, but not shown
        as a thing of its own. Parts come last and go first when the boxes are too many."""
        kept = [box for box in kept if all(box.iou(thing) <= self.nms_iou for thing in things)]
        parts = [box for box in kept if any(share_inside(box, thing) >= self.part_inside for thing in things)]
        shown = sorted(things + [box for box in kept if box not in parts], key=lambda box: -box.score)
        parts = sorted(parts, key=lambda box: -box.score)[: self.max_parts]
        return (shown + [replace(box, part=True) for box in parts])[: self.max_objects]

    def _things(self, contrast: np.ndarray, *, filled: bool) -> list[ObjectBox]:
        """On a plain backdrop, each region of cells clearly unlike it is one thing (a product shot)."""
        rows, cols = contrast.shape
        if contrast.max() <= 0:
            return []
        mask = contrast >= self.foreground * contrast.max()
        total = float(contrast[mask].sum())
        things = []
        for cells in regions(mask):
            share = float(contrast[cells[:, 0], cells[:, 1]].sum()) / total
            if share >= self.min_thing_share:  # smaller ones are specks and shadows
                r0, c0 = cells.min(axis=0)
                r1, c1 = cells.max(axis=0) + 1
                if filled:
                    r0, c0, r1, c1 = _into_border(r0, c0, r1, c1, rows, cols)
                things.append(
                    ObjectBox(c0 / cols, r0 / rows, (c1 - c0) / cols, (r1 - r0) / rows, min(share, 1.0))
                )
        return things

    def _regions(self, sal: np.ndarray, unit: np.ndarray) -> list[ObjectBox]:
        rows, cols = sal.shape
        total = float(sal.sum())
        found = []
        for level in self.levels:
            for cells in regions(sal >= level):
                r0, c0 = cells.min(axis=0)
                r1, c1 = cells.max(axis=0) + 1
                # Score: the share of all saliency inside the box minus the share of the photo it
                # covers (a tight box around a standout thing wins, the whole photo scores 0), times
                # how unlike its ring of neighbours it is (a piece of a thing or of a wall scores low).
                share = float(sal[r0:r1, c0:c1].sum()) / total
                area = (r1 - r0) * (c1 - c0) / (rows * cols)
                box = _widened(c0 / cols, r0 / rows, c1 / cols, r1 / rows, self.margin)
                score = (share - area) * ring_contrast(unit, r0, c0, r1, c1)
                found.append(ObjectBox(*box, score=float(np.clip(score, 0.0, 1.0))))
        return found


def energy(grid: np.ndarray) -> np.ndarray:
    """(h, w): L2 norm over channels, how strongly the model responds in each cell."""
    return np.linalg.norm(grid, axis=0)


def border_contrast(grid: np.ndarray) -> np.ndarray:
    """(h, w): 1 - cosine of each cell's features to the mean border cell (0 = looks like the border)."""
    cells = grid.reshape(grid.shape[0], -1).T
    cells = cells / (np.linalg.norm(cells, axis=1, keepdims=True) + 1e-6)
    reference = cells[_border_mask(grid.shape[1:]).ravel()].mean(axis=0)
    return (1.0 - cells @ _normed(reference)).reshape(grid.shape[1:])


def plain_backdrop(contrast: np.ndarray) -> float:
    """How alike the border cells are: 1 - their median border contrast. High on a studio or table
    backdrop (measured: 68 % of the dev sets' product photos >= 0.7, median 0.76), lower in scenes
    (the scene benchmark's tune half: median 0.53, 2 of 112 >= 0.7)."""
    return 1.0 - float(np.median(contrast[_border_mask(contrast.shape)]))


def _normed(vector: np.ndarray) -> np.ndarray:
    return vector / (np.linalg.norm(vector) + 1e-9)


def ring_contrast(unit: np.ndarray, r0: int, c0: int, r1: int, c1: int) -> float:
    """1 - cosine between the mean feature inside a box and in the ring of cells around it."""
    rows, cols = unit.shape[1:]
    ring = np.zeros((rows, cols), dtype=bool)
    ring[max(r0 - 1, 0) : r1 + 1, max(c0 - 1, 0) : c1 + 1] = True
    ring[r0:r1, c0:c1] = False
    if not ring.any():
        return 1.0
    inside = unit[:, r0:r1, c0:c1].reshape(unit.shape[0], -1).mean(axis=1)
    return float(1.0 - _normed(inside) @ _normed(unit[:, ring].mean(axis=1)))


def share_inside(box: ObjectBox, other: ObjectBox) -> float:
    """The share of ``box``'s area that lies inside ``other``."""
    ix = max(0.0, min(box.x + box.w, other.x + other.w) - max(box.x, other.x))
    iy = max(0.0, min(box.y + box.h, other.y + other.h) - max(box.y, other.y))
    return ix * iy / (box.w * box.h) if box.w * box.h > 0 else 0.0


def product_shot(contrast: np.ndarray) -> float:
    """Median border contrast of the inner cells: near 1 when everything inside differs from the
    border, i.e. one thing fills the photo (measured: 0.80-0.92 on such photos, scenes 95 % < 0.78)."""
    inner = ~_border_mask(contrast.shape)
    return float(np.median(contrast[inner])) if inner.any() else 0.0


def _into_border(r0: int, c0: int, r1: int, c1: int, rows: int, cols: int) -> tuple[int, int, int, int]:
    """A thing filling the photo that reaches the cells next to the border goes on into it: there the
    border cells are the thing itself, so they never stand out (it gets the whole photo)."""
    top, left = (0 if r0 <= 1 else r0), (0 if c0 <= 1 else c0)
    bottom, right = (rows if r1 >= rows - 1 else r1), (cols if c1 >= cols - 1 else c1)
    return top, left, bottom, right


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
