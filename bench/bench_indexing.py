"""Indexing throughput: JPEG files on disk -> vectors -> published index, against the model alone.

    .venv/bin/python bench/bench_indexing.py [--images 96] [--backbone resnet50] [--data DIR]

For each model it measures, in the same run and on the same photos:
  model only   the forward pass on already decoded and preprocessed tensors (the floor);
  end to end   Embedder.embed_sources (decode with JPEG draft mode + preprocess in a thread pool,
               overlapping the model) followed by search.index.index_build of the vectors.
and prints both rates and their ratio (1.0 = decoding and indexing hidden entirely behind the model).

Speed does not depend on the values of the weights, so the requested ResNet runs with untrained
(random) weights here, where ImageNet ResNet weights cannot be downloaded; the EfficientNet-Lite0
fallback runs with its real ImageNet weights. Photos are real (gcompris/opencv/mvtb), upscaled to a
realistic 1000-2000 px long side and saved as JPEG q90 in a temporary folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.devdata import data_dir, product_photos  # noqa: E402
from catalog.imaging import load_image  # noqa: E402
from search.embedding import Embedder, EmbedderConfig, build_embedder, iter_batches  # noqa: E402
from search.index import index_build  # noqa: E402

MAX_PIXELS = 40_000_000


def make_jpegs(sources: list[Path], count: int, out_dir: Path) -> list[Path]:
    """`count` JPEGs with long sides cycling through 1000..2000 px, from real photos."""
    paths = []
    for i in range(count):
        with Image.open(sources[i % len(sources)]) as image:
            image = image.convert("RGB")
            long_side = 1000 + (i * 137) % 1001
            scale = long_side / max(image.size)
            image = image.resize(
                (round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC
            )
            path = out_dir / f"photo{i:04d}.jpg"
            image.save(path, quality=90)
            paths.append(path)
    return paths


def model_only_rate(embedder: Embedder, tensors: list[torch.Tensor], batch_size: int, workers: int) -> float:
    """The same batching pipeline as for files, but items are already preprocessed tensors."""
    started = time.perf_counter()
    for batch in iter_batches(tensors, lambda tensor: tensor, batch_size=batch_size, workers=workers):
        embedder.embed_tensor(batch.tensor)
    return len(tensors) / (time.perf_counter() - started)


def embed_files_rate(
    embedder: Embedder, paths: list[Path], batch_size: int, workers: int
) -> tuple[float, list]:
    started = time.perf_counter()
    vectors = []
    for batch in embedder.embed_sources(paths, max_pixels=MAX_PIXELS, workers=workers, batch_size=batch_size):
        assert not batch.failures, batch.failures
        vectors.append(batch.vectors)
    return len(paths) / (time.perf_counter() - started), vectors


def index_seconds(vectors: list[np.ndarray], fingerprint: str) -> float:
    matrix = np.concatenate(vectors)
    with tempfile.TemporaryDirectory(prefix="bench-index-") as root:
        started = time.perf_counter()
        index_build(
            matrix,
            np.arange(len(matrix), dtype=np.int64),
            root=Path(root),
            fingerprint=fingerprint,
            n_trees=50,
        )
        return time.perf_counter() - started


def run(config: EmbedderConfig, label: str, paths: list[Path], args) -> None:
    embedder = build_embedder(config)
    print(f"\n{label}: {embedder.label}")
    print(
        f"  dim {embedder.dim}, batch {args.batch_size}, {args.workers} decode threads, {args.rounds} rounds"
    )
    tensors = [embedder.load_and_prepare(path, max_pixels=MAX_PIXELS) for path in paths]
    embedder.embed_tensor(torch.stack(tensors[: args.batch_size]))  # warm-up (allocations, kernels)
    # The shared machine's load drifts: alternate model-only and end-to-end runs and compare each
    # end-to-end run with the model-only run just before it.
    model_rates, file_rates = [], []
    for _ in range(args.rounds):
        model_rates.append(model_only_rate(embedder, tensors, args.batch_size, args.workers))
        rate, vectors = embed_files_rate(embedder, paths, args.batch_size, args.workers)
        file_rates.append(rate)
    ratios = [f / m for f, m in zip(file_rates, model_rates, strict=True)]
    indexing = index_seconds(vectors, embedder.fingerprint)
    searchable = len(paths) / (len(paths) / median(file_rates) + indexing)
    print(f"  model only (preprocessed tensors)  : {median(model_rates):6.1f} img/s  {_runs(model_rates)}")
    print(f"  files: decode+preprocess+model     : {median(file_rates):6.1f} img/s  {_runs(file_rates)}")
    print(f"  files -> searchable (+ index build): {searchable:6.1f} img/s  (index build {indexing:.2f} s)")
    print(
        f"  ratio files / model (paired runs)  : {median(ratios):6.2f}  {_runs(ratios, '.2f')}"
        "  (target >= 0.85)"
    )


def _runs(values: list[float], fmt: str = ".1f") -> str:
    return "(runs: " + ", ".join(format(v, fmt) for v in values) + ")"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--backbone", default="resnet50", help="timed with untrained weights (speed only)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="alternating model-only / end-to-end runs")
    parser.add_argument("--workers", type=int, default=2, help="decode threads")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--skip-fallback", action="store_true", help="do not time EfficientNet-Lite0")
    parser.add_argument("--data", help="photo sets folder (default: $SHOP_SEARCH_DEVDATA or var/devdata)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.images} photos")
    with (
        tempfile.TemporaryDirectory(prefix="bench-jpegs-") as tmp,
        tempfile.TemporaryDirectory() as empty_home,
    ):
        paths = make_jpegs(product_photos(data_dir(args.data)), args.images, Path(tmp))
        sizes = [load_image(p, max_pixels=MAX_PIXELS).size for p in paths[:8]]
        mean_kb = sum(p.stat().st_size for p in paths) / len(paths) / 1024
        print(f"JPEG q90, long side 1000-2000 px (e.g. {sizes[:3]}), {mean_kb:.0f} KB on average")
        run(
            EmbedderConfig(backbone=args.backbone, untrained=True),
            f"{args.backbone} (untrained)",
            paths,
            args,
        )
        if not args.skip_fallback:
            # No weights path, an empty cache and no download: the resolver picks the offline fallback.
            fallback = EmbedderConfig(backbone=args.backbone, torch_home=empty_home, allow_download=False)
            run(fallback, "fallback", paths, args)


if __name__ == "__main__":
    main()
