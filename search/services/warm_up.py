"""Warming a web process up before it takes requests (gunicorn.conf.py's post_worker_init, when
SEARCH_WARM_UP is on): no shopper pays for a cold start.

Measured before (docs/benchmarks.md, "Load"): a fresh worker's first searches took 0.3–1.8 s against a
p50 of 36 ms. What they paid for, in order: importing torch and loading the model; torch's first
forward passes (allocations, oneDNN kernels picked per input shape); opening the index build
(checksums of every file) and the first index query; Django importing the views and opening a
database connection. Each is done here once, with a generated photo, without the side effects of a
real search (no query photo kept, no search counted in the metrics).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.urls import get_resolver
from PIL import Image, ImageDraw

from .index_shipping import index_follow_storage
from .ranking import Filters, Ranker, timed
from .state import query_embedder, serving_index

logger = logging.getLogger(__name__)

PHOTO_SIZE = (1000, 750)  # what a phone upload is decoded to before the model's own resize


@dataclass(frozen=True)
class WarmUp:
    model: str
    index_version: str | None  # the build this process serves; None: exact search over stored vectors
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds per step, and "total"


def search_warm_up() -> WarmUp:
    """Load and run everything a search by photo needs once; returns what was warmed and how long
    each step took. Raises what the first search would raise (e.g. SearchUnavailable)."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with timed(timings, "index"):
        index_follow_storage(wait=True)  # several machines: fetch the published build before serving
        serving = serving_index()
    with timed(timings, "model_load"):
        embedder = query_embedder(serving)
    picture = _generated_photo()
    with timed(timings, "model_run"):
        embedder.embed_one(picture)  # a query with a crop: one image
        vectors = query_model_pass(embedder, picture)
    with timed(timings, "ranking"):
        Ranker(embedder.fingerprint, serving, {}, dim=embedder.dim).hits(vectors[:1], k=1, filters=Filters())
    with timed(timings, "views"):
        get_resolver().url_patterns  # noqa: B018 - imports every view module and the API's serializers
    timings["total"] = (time.perf_counter() - started) * 1000
    return WarmUp(embedder.name, serving.version if serving else None, timings)


def query_model_pass(embedder, picture: Image.Image, detailed: Image.Image | None = None) -> np.ndarray:
    """The model's work of one search by photo, as search.services.query does it: the things in the
    (detailed) photo found, then the photo and each thing embedded in one batch. Also what
    bench/bench_load.py times as "the model alone"."""
    if settings.SEARCH_MAX_OBJECTS <= 0:
        return np.asarray(embedder.embed_one(picture), dtype=np.float32)[None, :]
    from search.embedding.objects import find_objects

    detailed = detailed or picture
    boxes = find_objects(embedder, detailed, max_objects=settings.SEARCH_MAX_OBJECTS)
    crops = [detailed.crop(_pixels(box.crop, detailed.size)) for box in boxes]
    return np.asarray(embedder.embed([picture, *crops]), dtype=np.float32)


def _pixels(crop: tuple[float, float, float, float], size: tuple[int, int]) -> tuple[int, int, int, int]:
    (x, y, w, h), (width, height) = crop, size
    left, top = min(int(x * width), width - 1), min(int(y * height), height - 1)
    return (
        left,
        top,
        max(left + 1, min(width, int((x + w) * width))),
        max(top + 1, min(height, int((y + h) * height))),
    )


def _generated_photo() -> Image.Image:
    """A photo-like picture: two coloured things on a light background (object finding has work to do)."""
    picture = Image.new("RGB", PHOTO_SIZE, (235, 232, 225))
    draw = ImageDraw.Draw(picture)
    draw.ellipse((120, 180, 420, 560), fill=(180, 40, 30))
    draw.rectangle((560, 220, 880, 600), fill=(30, 70, 160))
    return picture
