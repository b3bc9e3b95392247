"""What the model alone allows on this machine: searches per second when N processes with T torch
threads each (the server's shape) do nothing but a search's model work (search.services.warm_up.
query_model_pass: object finding, then the photo and its objects in one batch) on photos decoded
beforehand, back to back. bench_load.py compares the server's throughput with it.

    python bench/model_alone.py --processes 2 --seconds 20   # alone, against an existing site folder

Each process is `python bench/model_alone.py --worker START SECONDS`: it sets Django up with the
environment it is given (the load benchmark's site), loads the model, warms it up, waits until the
common START time, then counts the passes it completes in SECONDS and prints the count.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PHOTOS_DIR = BASE_DIR / "tests" / "photos"


def model_alone_rate(
    env: dict[str, str], processes: int, seconds: float, photo_size: int = 1000
) -> tuple[float, float]:
    """Model passes per second of ``processes`` processes running at once, each as the server's worker
    would (``env`` carries SEARCH_TORCH_THREADS and the site's settings), and the CPU milliseconds one
    pass took (all threads; on a shared machine the figure other people's load changes least)."""
    start = time.time() + 45  # after every process has loaded its model and warmed up
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", str(start), str(seconds), "--photo-size", str(photo_size)],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    counts, cpu = [], []
    for worker in workers:
        out, err = worker.communicate(timeout=start - time.time() + seconds + 120)
        if worker.returncode != 0 or not out.strip():
            sys.exit(f"model-alone worker failed:\n{err[-2000:]}")
        done, cpu_seconds = out.split()[-2:]
        counts.append(int(done))
        cpu.append(float(cpu_seconds))
    return sum(counts) / seconds, 1000 * sum(cpu) / max(1, sum(counts))


def _worker(start: float, seconds: float, photo_size: int) -> None:
    sys.path.insert(0, str(BASE_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop_search.settings.base")
    import django

    django.setup()
    from django.conf import settings

    from search.embedder import current_embedder
    from search.services.warm_up import query_model_pass
    from search.uploads import decode_query_image

    embedder = current_embedder()
    pictures = []
    for data in _query_jpegs(photo_size):
        picture = decode_query_image(data)
        detailed = decode_query_image(data, detail_size=settings.SEARCH_OBJECTS_DETAIL)
        pictures.append((picture, detailed))
    for picture, detailed in pictures[:2]:
        query_model_pass(embedder, picture, detailed)
    time.sleep(max(0.0, start - time.time()))
    done, end, cpu = 0, time.time() + seconds, time.process_time()
    while time.time() < end:
        picture, detailed = pictures[done % len(pictures)]
        query_model_pass(embedder, picture, detailed)
        done += 1
    print(done, time.process_time() - cpu)


def _query_jpegs(size: int) -> list[bytes]:
    """The load benchmark's query photos: tests/photos re-encoded as ``size`` px JPEGs."""
    from PIL import Image

    photos = []
    for path in sorted(PHOTOS_DIR.iterdir()):
        if path.suffix.lower() not in {".jpg", ".png", ".webp"}:
            continue
        with Image.open(path) as image:
            rgb = image.convert("RGB")
        scale = size / max(rgb.size)
        rgb = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        rgb.save(buf, format="JPEG", quality=90)
        photos.append(buf.getvalue())
    return photos


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", nargs=2, type=float, metavar=("START", "SECONDS"), help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--photo-size", type=int, default=1000)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker[0], args.worker[1], args.photo_size)
        return
    env = dict(os.environ)
    if "SEARCH_TORCH_THREADS" not in env:
        sys.path.insert(0, str(BASE_DIR))
        from shop_search.cpu import torch_threads_per_process

        env["SEARCH_TORCH_THREADS"] = str(torch_threads_per_process(args.processes))
    rate, cpu_ms = model_alone_rate(env, args.processes, args.seconds, args.photo_size)
    threads = env["SEARCH_TORCH_THREADS"]
    print(
        f"model alone: {rate:.1f} searches/s, {cpu_ms:.0f} CPU ms/search "
        f"({args.processes} processes x {threads} threads)"
    )


if __name__ == "__main__":
    main()
