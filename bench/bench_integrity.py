"""Benchmark what index integrity costs: checksums at build/load, the size guard on every query.

    .venv/bin/python bench/bench_integrity.py [--hash-n 1000000] [--dim 256] [--index-n 50000]

1. Hashing a ``hash-n`` x ``dim`` float32 vectors file (1M x 256 = 1 GB) with sha256 and blake2b,
   from the page cache: what each process pays once per build it loads (and the build once).
2. Opening an ``index-n`` build with and without checksum verification.
3. Per query: ``IndexReader.damage()`` (one fstat per memory-mapped file), ``current_index()`` on a
   cached reader (readlink + that check), against one Annoy query on the same build.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.index import IndexReader, current_index, index_build  # noqa: E402
from search.index.publish import build_dir_remove, build_path  # noqa: E402

_CHUNK = 50_000


def write_vectors(path: Path, n: int, dim: int) -> None:
    """A .npy of n x dim random float32, written in chunks (never n x dim in memory twice)."""
    rng = np.random.default_rng(0)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
    for start in range(0, n, _CHUNK):
        out[start : start + _CHUNK] = rng.standard_normal((min(_CHUNK, n - start), dim), dtype=np.float32)
    out.flush()
    del out


def seconds_to_hash(path: Path, algorithm: str, rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        with open(path, "rb") as fh:
            hashlib.file_digest(fh, algorithm)
        times.append(time.perf_counter() - started)
    return min(times)  # the first round may also read from disk; the rest from the page cache


def microseconds_per_call(call, repeat: int = 200_000) -> float:
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            call()
        runs.append((time.perf_counter() - started) / repeat * 1e6)
    return statistics.median(runs)


def bench_hashing(args, workdir: Path) -> None:
    path = workdir / "vectors.npy"
    write_vectors(path, args.hash_n, args.dim)
    size_gb = path.stat().st_size / 1e9
    print(f"## Hashing a {args.hash_n:,} x {args.dim} float32 vectors file ({size_gb:.2f} GB, page cache)\n")
    print("| algorithm | seconds | GB/s |\n|---|---|---|")
    for algorithm in ("sha256", "blake2b"):
        seconds = seconds_to_hash(path, algorithm)
        print(f"| {algorithm} | {seconds:.2f} | {size_gb / seconds:.2f} |")
    path.unlink()


def bench_index(args, workdir: Path) -> None:
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((args.index_n, args.dim), dtype=np.float32)
    manifest = index_build(vectors, np.arange(args.index_n), root=workdir, fingerprint="bench", n_trees=10)
    folder = build_path(workdir, manifest.version)
    size_mb = manifest.size_bytes / 1e6
    opened = {}
    for checksums in (False, True, False, True):
        started = time.perf_counter()
        IndexReader(folder, verify_checksums=checksums)
        opened.setdefault(checksums, []).append(time.perf_counter() - started)
    print(f"\n## Opening a {args.index_n:,} x {args.dim} build ({size_mb:.0f} MB on disk)\n")
    print(f"- sizes only: {min(opened[False]) * 1000:.1f} ms; with sha256: {min(opened[True]) * 1000:.1f} ms")
    annoy_per_item = manifest.files["items.annoy"] / args.index_n
    print(f"- Annoy file: {annoy_per_item:.0f} bytes per item at {args.dim} dims, 10 trees")

    reader = current_index(workdir)
    query = vectors[0]
    guard = microseconds_per_call(reader.damage)
    cached = microseconds_per_call(lambda: current_index(workdir))
    search = microseconds_per_call(
        lambda: reader.search(query, 10, exact_threshold=0, search_k=20_000), repeat=200
    )
    print("\n## Per query\n")
    print("| step | µs |\n|---|---|")
    print(f"| `IndexReader.damage()` (fstat of vectors.npy and items.annoy) | {guard:.2f} |")
    print(f"| `current_index()` on the cached reader (readlink + damage check) | {cached:.2f} |")
    print(f"| one Annoy query + exact re-rank (k=10, search_k=20000), guard included | {search:.0f} |")
    build_dir_remove(folder)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hash-n", type=int, default=1_000_000)
    parser.add_argument("--index-n", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=256)
    args = parser.parse_args()
    machine = platform.processor() or platform.machine()
    print(f"# Index integrity costs — {machine}, Python {platform.python_version()}\n")
    with tempfile.TemporaryDirectory(prefix="bench-integrity-") as tmp:
        bench_hashing(args, Path(tmp))
        bench_index(args, Path(tmp))


if __name__ == "__main__":
    main()
