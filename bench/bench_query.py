"""Query latency of photo_search (the one search service) for one 1000x1000 JPEG, split into its
parts, against the model alone.

    .venv/bin/python bench/bench_query.py [--runs 30] [--untrained]

Sets up a throwaway site in a temporary folder (the embedded defaults: SQLite, filesystem broker,
media and index under that folder, DJANGO_DEBUG=1), loads the demo catalog with `load_demo` (import,
embed, build the index: a demo-sized catalog of ~170 products), then times `photo_search` on the
same JPEG bytes `--runs` times. The service fills a `timings` dict: decode (JPEG bytes -> RGB),
model (preprocess + forward), index (index search + exact re-rank), db (filters and product rows).
The model alone is timed on the already preprocessed tensor. Medians are printed.

The model is the one the settings resolve (SEARCH_BACKBONE, default resnet50; here, without ImageNet
ResNet weights, the EfficientNet-Lite0 fallback). --untrained times the requested ResNet with
random weights instead: speed does not depend on weight values.
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


def query_jpeg() -> bytes:
    """A real product photo as a 1000x1000 JPEG (q90), as a phone upload would roughly be."""
    from PIL import Image

    with Image.open(QUERY_PHOTO) as image:
        square = image.convert("RGB").resize((1000, 1000), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    square.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def time_model_alone(embedder, picture, parts: dict[str, list[float]]) -> None:
    """Milliseconds of preprocessing alone and of the forward pass alone (one image)."""
    started = time.perf_counter()
    tensor = embedder.prepare(picture)[None]
    prepared = time.perf_counter()
    embedder.embed_tensor(tensor)
    parts.setdefault("alone_forward", []).append((time.perf_counter() - prepared) * 1000)
    parts.setdefault("alone_preprocess", []).append((prepared - started) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--backbone", default=os.environ.get("SEARCH_BACKBONE", "resnet50"))
    parser.add_argument("--untrained", action="store_true", help="random weights for the requested backbone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp:
        configure(Path(tmp), args)
        from django.core.management import call_command

        from catalog.models import Product
        from search.embedder import current_embedder
        from search.embedding import load_image
        from search.services.query import PhotoSource, photo_search

        call_command("migrate", verbosity=0, interactive=False)
        call_command("load_demo", stdout=io.StringIO())
        embedder = current_embedder()
        data = query_jpeg()
        print(f"model: {embedder.label}; catalog: {Product.objects.count()} products; query: 1000x1000 JPEG")

        photo_search(PhotoSource(data=data), k=12)  # warm-up: index mmap, first allocations
        picture = load_image(data, max_pixels=40_000_000)
        parts: dict[str, list[float]] = {}
        # Alternate a full query and the model alone so that load changes on the shared machine
        # hit both alike.
        for _ in range(args.runs):
            result = photo_search(PhotoSource(data=data), k=12)
            hits = result.hits
            for key, value in result.timings.items():
                parts.setdefault(key, []).append(value)
            time_model_alone(embedder, picture, parts)
        prep_ms, forward_ms = median(parts["alone_preprocess"]), median(parts["alone_forward"])

    print(f"top hit: {hits[0].product.name} (score {hits[0].score:.3f})")
    print(f"median over {args.runs} runs, milliseconds:")
    for key in ("read", "validate", "model", "index", "db", "total"):
        print(f"  photo_search {key:<8}: {median(parts.get(key, [float('nan')])):8.1f}")
    print(f"  model alone: preprocess {prep_ms:.1f} + forward {forward_ms:.1f} = {prep_ms + forward_ms:.1f}")
    total = median(parts["total"])
    print(f"  forward pass share of the query: {forward_ms / total:.0%}")
    print(f"  query minus forward pass: {total - forward_ms:.1f} ms")


if __name__ == "__main__":
    main()
