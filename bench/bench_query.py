"""Query latency of photo_search (the one search service) for one JPEG (1000x1000 or --size), split into its
parts, with object finding (the default) and on the whole photo only, against the model alone.

    .venv/bin/python bench/bench_query.py [--runs 30] [--untrained] [--also SETTING=VALUE] [--size 1000x1000]

Sets up a throwaway site in a temporary folder (the embedded defaults: SQLite, filesystem broker,
media and index under that folder, DJANGO_DEBUG=1), loads the demo catalog with `load_demo` (import,
embed, build the index: a demo-sized catalog of ~170 products), then times `photo_search` on the
same JPEG bytes `--runs` times with object finding and `--runs` times without, alternated. The service
fills a `timings` dict: read, validate (decoding, the detailed decode for object finding included),
objects (the feature-map pass and box finding), model (preprocess + forward: the whole photo, or the
whole photo and the box crops in one batch), index (index search + exact re-rank, per object too),
db (filters and product rows). Also alternated: object finding alone on the same detailed photo, split
as bench/bench_scenes.py splits it (feature map, boxes, crops + one batch), and the model alone
(preprocessing, then one forward pass on the preprocessed tensor). Medians (p50) are printed.

The model is the one the settings resolve (SEARCH_BACKBONE, default resnet50; here, without ImageNet
ResNet weights, the EfficientNet-Lite0 fallback). --untrained times the requested ResNet with
random weights instead: speed does not depend on weight values. --also SETTING=VALUE adds a third search,
with object finding under that setting (e.g. SEARCH_OBJECTS_MAX_AREA=1: the feature map at the full long
side, no pixel budget; SEARCH_OBJECTS_MAP_PRECISION=float32), alternated with the others, to compare a
setting in one run. Numbers are read as numbers.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

QUERY_PHOTO = BASE_DIR / "tests" / "photos" / "hammer1.webp"


def configure(var_dir: Path, args) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="shop_search.settings.base",
        DJANGO_DEBUG="1",
        SHOP_SEARCH_VAR_DIR=str(var_dir),
        SEARCH_ALLOW_DOWNLOAD="0",
        SEARCH_BACKBONE=args.backbone,
        SEARCH_UNTRAINED="1" if args.untrained else "0",
        LOG_LEVEL="WARNING",
    )
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "MEDIA_ROOT", "SEARCH_INDEX_DIR"):
        os.environ.pop(name, None)
    import django

    django.setup()


def query_jpeg(size: tuple[int, int] = (1000, 1000)) -> bytes:
    """A real product photo (a 320 x 213 hammer on a plain backdrop) resized to ``size`` as a JPEG (q90),
    as a phone upload would roughly be: 1000 x 1000 by default; 4032x3024 is a 12-MP phone photo."""
    from PIL import Image

    with Image.open(QUERY_PHOTO) as image:
        resized = image.convert("RGB").resize(size, Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    resized.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def setting_value(text: str) -> tuple[str, object]:
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("SEARCH_"):
        raise argparse.ArgumentTypeError(f"--also must be SEARCH_SETTING=VALUE, not {text!r}")
    try:
        return name, float(value) if "." in value else int(value)
    except ValueError:
        return name, value


def photo_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--size must be WIDTHxHEIGHT, e.g. 1024x768, not {text!r}") from exc
    if not (32 <= width <= 8000 and 32 <= height <= 8000):
        raise argparse.ArgumentTypeError("--size: each side 32 to 8000 pixels")
    return width, height


def time_model_alone(embedder, picture, parts: dict[str, list[float]]) -> None:
    """Milliseconds of preprocessing alone and of the forward pass alone (one image)."""
    started = time.perf_counter()
    tensor = embedder.prepare(picture)[None]
    prepared = time.perf_counter()
    embedder.embed_tensor(tensor)
    parts.setdefault("alone_forward", []).append((time.perf_counter() - prepared) * 1000)
    parts.setdefault("alone_preprocess", []).append((prepared - started) * 1000)


def time_object_finding(embedder, data: bytes, parts: dict[str, list[float]]) -> None:
    """Milliseconds of object finding's parts on the photo the service finds objects in (the decode at
    SEARCH_OBJECTS_DETAIL), measured as bench/bench_scenes.py measures them."""
    from django.conf import settings

    from bench.bench_scenes import object_finding_parts
    from search.embedding.objects import ObjectFinder
    from search.services.query import _detailed, decode_query_image

    finder = ObjectFinder(
        max_objects=settings.SEARCH_MAX_OBJECTS,
        long_side=settings.SEARCH_OBJECTS_LONG_SIDE,
        max_area=settings.SEARCH_OBJECTS_MAX_AREA,
        map_precision=settings.SEARCH_OBJECTS_MAP_PRECISION,
        min_score=settings.SEARCH_OBJECTS_MIN_SCORE,
    )
    detailed = _detailed(data, decode_query_image(data))
    for name, seconds in object_finding_parts(embedder, finder, detailed).items():
        parts.setdefault(f"finding {name}", []).append(seconds * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--backbone", default=os.environ.get("SEARCH_BACKBONE", "resnet50"))
    parser.add_argument("--untrained", action="store_true", help="random weights for the requested backbone")
    parser.add_argument("--size", type=photo_size, default=(1000, 1000), help="query photo WIDTHxHEIGHT")
    parser.add_argument("--also", type=setting_value, help="also time object finding with SETTING=VALUE")
    args = parser.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp:
        configure(Path(tmp), args)
        from django.core.management import call_command
        from django.test import override_settings

        from catalog.models import Product
        from search.embedder import current_embedder
        from search.embedding import load_image
        from search.services.query import PhotoSource, photo_search

        call_command("migrate", verbosity=0, interactive=False)
        call_command("load_demo", stdout=io.StringIO())
        embedder = current_embedder()
        data = query_jpeg(args.size)
        print(
            f"model: {embedder.label}; catalog: {Product.objects.count()} products; "
            f"query: {args.size[0]}x{args.size[1]} JPEG ({len(data) // 1024} KB)"
        )

        searches = [("objects", True, {}), ("whole", False, {})]
        if args.also is not None:
            searches.append(("other", True, dict([args.also])))
        for _, objects, changed in searches:  # warm-up: index mmap, first allocations
            with override_settings(**changed):
                photo_search(PhotoSource(data=data), k=12, objects=objects)
        picture = load_image(data, max_pixels=40_000_000)
        runs: dict[str, dict[str, list[float]]] = {name: {} for name, _, _ in searches}
        runs["alone"] = {}
        # Alternate the searches, object finding alone and the model alone, so that load changes on
        # the shared machine hit all of them alike.
        for _ in range(args.runs):
            for name, objects, changed in searches:
                with override_settings(**changed):
                    result = photo_search(PhotoSource(data=data), k=12, objects=objects)
                for key, value in result.timings.items():
                    runs[name].setdefault(key, []).append(value)
                runs[name].setdefault("boxes shown", []).append(len(result.objects))
                if name == "objects":
                    hits = result.hits
            time_object_finding(embedder, data, runs["alone"])
            time_model_alone(embedder, picture, runs["alone"])
    report(args.runs, runs, hits, other=args.also)


def report(
    n_runs: int, runs: dict[str, dict[str, list[float]]], hits, other: tuple[str, object] | None = None
) -> None:
    p50 = {name: {key: median(values) for key, values in parts.items()} for name, parts in runs.items()}
    alone, forward = p50["alone"], p50["alone"]["alone_forward"]
    print(f"top hit: {hits[0].product.name} (score {hits[0].score:.3f})")
    print(f"p50 (median) over {n_runs} runs of each, alternated, milliseconds:")
    columns = ["objects", "whole"] + (["other"] if other is not None else [])
    if other is not None:
        print(f"  third column: with objects and {other[0]}={other[1]}")
    heads = ["with objects", "whole photo"] + (["that setting"] if other is not None else [])
    print(f"  {'part':<22}" + "".join(f"{head:>16}" for head in heads))
    for key in ("read", "validate", "objects", "model", "index", "db", "total"):
        cells = "".join(f"{p50[name].get(key, float('nan')):>16.1f}" for name in columns)
        print(f"  photo_search {key:<9}{cells}")
    print(f"  things shown per photo: {p50['objects']['boxes shown']:.0f}")
    finding = [alone[f"finding {name}"] for name in ("feature map", "boxes", "embed", "objects")]
    print(
        "  object finding alone: feature map {:.1f} + boxes {:.1f} + crops and one batch {:.1f}"
        " = {:.1f}".format(*finding)
    )
    print(
        f"  model alone: preprocess {alone['alone_preprocess']:.1f} + forward {forward:.1f}"
        f" = {alone['alone_preprocess'] + forward:.1f}"
    )
    for name in columns:
        total = p50[name]["total"]
        ratio = f"total / one forward pass = {total / forward:.1f}"
        print(f"  {name:>7}: {ratio}; total minus the forward pass {total - forward:.1f} ms")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
