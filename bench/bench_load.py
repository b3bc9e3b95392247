"""Searches per second, p50/p99 latency and errors of POST /api/v1/search/ under concurrent clients,
against the production shape (gunicorn, DJANGO_DEBUG off), with an index swap in the middle of each level,
compared with what the model alone allows on the same cores (bench/model_alone.py).

    .venv/bin/python bench/bench_load.py [--levels 1,4,16] [--seconds 20] [--workers 2]
                                          [--torch-threads N] [--var-dir DIR] [--url URL] [--no-swap]
                                          [--model-alone-seconds 20]

Without --url it sets up a site in a temporary folder (or --var-dir, reused when given: a second run
skips the slow embedding): SQLite, filesystem broker, `migrate` + `load_demo` (the demo catalog,
embedded and indexed), then starts gunicorn with gunicorn.conf.py on a free port of 127.0.0.1, and
stops it at the end. SEARCH_ANON_RATE is raised so the throttle does not count as an error.

Each level runs N client threads for --seconds; each client sends real photos (tests/photos,
re-encoded as 1000 px JPEGs, as a phone would upload) one after the other over a kept-alive
connection. A third of the way in, `manage.py build_index` runs in a subprocess and publishes a new
build; the web workers swap to it while serving (the level is stretched to end at least 3 s after the
publish). A monitor polls /api/v1/index/status/ to see the swap.

  error  = no answer, a timeout or any status but 200
  failed = a 200 whose `results` is empty or missing (every query photo has lookalikes in the demo)

Before the server starts, --workers processes with the server's torch threads each run nothing but a
search's model work on the same photos for --model-alone-seconds: the ceiling the server's throughput is
compared with ("of model"). The first search after gunicorn starts is timed too ("cold start").
Goals (issue 13): p99 <= 3 x p50 at 4 clients; throughput within 20 % of the model alone.

The clients share the 2 cores with the server: figures are for this machine as a whole.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from model_alone import model_alone_rate
from PIL import Image

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))  # shop_search.cpu: the torch threads gunicorn.conf.py's workers use
PHOTOS_DIR = BASE_DIR / "tests" / "photos"
CLEARED = {"DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE", "MEDIA_ROOT", "SEARCH_INDEX_DIR"}
REQUEST_TIMEOUT = 60
SETTLE_SECONDS = 3  # load kept on the new index after a swap that ended late


@dataclass
class Sample:
    started: float  # seconds since the level began
    ms: float
    outcome: str  # "ok", "failed" (200 without results) or "error"
    detail: str = ""


@dataclass
class Level:
    clients: int
    seconds: float  # the load runs this long, and at least SETTLE_SECONDS past the swap's publish
    until: float = 0.0  # monotonic time the clients stop at; the swap moves it
    samples: list[Sample] = field(default_factory=list)
    swap: str = ""
    versions: list[tuple[float, str]] = field(default_factory=list)
    server_cpu: float = float("nan")  # CPU seconds the gunicorn processes used during the level


# --- the site -----------------------------------------------------------------------------------


def site_env(var_dir: Path, args) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(
        DJANGO_DEBUG="0",
        SECRET_KEY="bench-load-secret-key-not-for-production",
        SHOP_SEARCH_VAR_DIR=str(var_dir),
        ALLOWED_HOSTS="127.0.0.1",
        SEARCH_ALLOW_DOWNLOAD="0",
        SEARCH_ANON_RATE="1000000/minute",
        WEB_CONCURRENCY=str(args.workers),
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    if args.torch_threads:
        env["SEARCH_TORCH_THREADS"] = str(args.torch_threads)
    return env


def manage(env: dict[str, str], *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *command], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )


def prepare(env: dict[str, str]) -> None:
    for command in (("migrate", "--no-input"), ("load_demo",)):
        started = time.monotonic()
        result = manage(env, *command)
        if result.returncode != 0:
            sys.exit(f"manage.py {' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
        print(f"  manage.py {' '.join(command)}: {time.monotonic() - started:.0f} s", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the master and its workers are stopped as one group
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"gunicorn exited ({server.returncode}); see {log}")
        try:
            requests.get(url + "/api/v1/index/status/", timeout=5)
            return server, url
        except requests.RequestException:
            time.sleep(0.5)
    stop_gunicorn(server)
    sys.exit(f"gunicorn did not answer within 120 s; see {log}")


def stop_gunicorn(server: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# --- the load -----------------------------------------------------------------------------------


def query_photos(size: int) -> list[tuple[str, bytes]]:
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
        photos.append((path.stem + ".jpg", buf.getvalue()))
    return photos


def search_once(session: requests.Session, url: str, photo: tuple[str, bytes]) -> tuple[str, str]:
    try:
        response = session.post(
            url + "/api/v1/search/",
            files={"image": (photo[0], photo[1], "image/jpeg")},
            data={"k": "10"},
            timeout=REQUEST_TIMEOUT,
        )
    except requests.RequestException as exc:
        return "error", f"{type(exc).__name__}: {str(exc)[:100]}"
    if response.status_code != 200:
        return "error", f"HTTP {response.status_code} {response.text[:120]}"
    try:
        results = response.json().get("results")
    except ValueError:
        return "error", "not JSON"
    return ("ok", "") if results else ("failed", "no results")


def client(url: str, photos, offset: int, level: Level, t0: float) -> None:
    session = requests.Session()
    n = offset
    while time.monotonic() < level.until:
        started = time.monotonic()
        outcome, detail = search_once(session, url, photos[n % len(photos)])
        level.samples.append(Sample(started - t0, (time.monotonic() - started) * 1000, outcome, detail))
        n += 1
    session.close()


def serving_version(url: str) -> str:
    try:
        build = requests.get(url + "/api/v1/index/status/", timeout=10).json().get("current_build") or {}
    except (requests.RequestException, ValueError):
        return "?"
    return str(build.get("version", "-"))


def monitor(url: str, level: Level, t0: float) -> None:
    last = None
    while time.monotonic() < level.until:
        version = serving_version(url)
        if version != last:
            level.versions.append((time.monotonic() - t0, version))
            last = version
        time.sleep(0.5)


def swap_index(env: dict[str, str] | None, level: Level, t0: float, delay: float) -> None:
    time.sleep(delay)
    level.until = float("inf")  # the clients keep going until the new build is published
    started = time.monotonic() - t0
    try:
        result = manage(env or os.environ.copy(), "build_index")
    finally:
        ended = time.monotonic() - t0
        level.until = t0 + max(level.seconds, ended + SETTLE_SECONDS)
    published = next((line for line in result.stdout.splitlines() if "published as" in line), "")
    if result.returncode == 0 and published:
        level.swap = f"build_index {started:.1f}-{ended:.1f} s: {published.strip()}"
    else:
        level.swap = (
            f"build_index {started:.1f}-{ended:.1f} s FAILED: {(result.stderr or result.stdout)[-300:]}"
        )


def server_cpu_seconds(master: subprocess.Popen | None) -> float:
    """CPU time (user + system) of the gunicorn master and its workers. On a shared machine this,
    per search, is the figure that other people's load does not change much; wall-clock ones it does."""
    if master is None:
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if master.pid in (pid, ppid):
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def run_level(url: str, photos, clients: int, seconds: float, env, swap: bool, server=None) -> Level:
    cpu_before = server_cpu_seconds(server)
    t0 = time.monotonic()
    level = Level(clients=clients, seconds=seconds, until=t0 + seconds)
    threads = [threading.Thread(target=client, args=(url, photos, i, level, t0)) for i in range(clients)]
    threads.append(threading.Thread(target=monitor, args=(url, level, t0)))
    if swap:
        threads.append(threading.Thread(target=swap_index, args=(env, level, t0, seconds / 3)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    level.seconds = level.until - t0  # longer when the swap ended late
    level.server_cpu = server_cpu_seconds(server) - cpu_before
    return level


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(level: Level, alone: float) -> dict:
    ms = [s.ms for s in level.samples]
    outcome = {name: sum(s.outcome == name for s in level.samples) for name in ("ok", "failed", "error")}
    row = {
        "clients": level.clients,
        "searches": len(level.samples),
        "per_s": len(level.samples) / level.seconds,
        "p50": percentile(ms, 0.50),
        "p99": percentile(ms, 0.99),
        "max": max(ms, default=float("nan")),
        "cpu_ms": 1000 * level.server_cpu / max(1, len(level.samples)),
        "swap_failed": "FAILED" in level.swap,
        **outcome,
    }
    of_model = f"{100 * row['per_s'] / alone:>7.0f} %" if alone > 0 else f"{'-':>9}"
    print(
        f"{row['clients']:>7} | {row['searches']:>8} | {row['per_s']:>10.1f} | {of_model} | "
        f"{row['p50']:>6.0f} | {row['p99']:>6.0f} | {row['p99'] / row['p50']:>7.1f} | {row['max']:>6.0f} | "
        f"{row['error']:>6} | "
        f"{row['failed']:>6} | {row['cpu_ms']:>20.0f}",
        flush=True,
    )
    print(f"        swap: {level.swap or 'none'}")
    print("        serving index: " + ", ".join(f"{version} from {t:.1f} s" for t, version in level.versions))
    for detail in sorted({s.detail for s in level.samples if s.outcome != "ok"})[:5]:
        print(f"        e.g. {detail}")
    return row


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line), "?"
    )
    return f"{os.cpu_count()} cores ({model}); {uptime()}"


def uptime() -> str:
    """`uptime`'s line: the machine is shared, and its load decides what wall-clock figures mean."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except OSError:
        return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def worker_restarts(log: Path, workers: int) -> int:
    """Workers gunicorn had to boot again (a crash, a timeout, a kill): each lost the requests it held."""
    text = log.read_text() if log.exists() else ""
    return max(0, text.count("Booting worker") - workers)


def warm_up(url: str, photos, workers: int) -> None:
    """Every worker has served searches before the first level is timed (each worker gets requests).
    The first search of the fresh server is timed: with SEARCH_WARM_UP it is no slower than the rest."""
    deadline = time.monotonic() + 180
    ok = 0
    while ok < 4 * workers and time.monotonic() < deadline:
        with requests.Session() as session:  # a new connection each time: gunicorn spreads them
            started = time.monotonic()
            outcome, detail = search_once(session, url, photos[ok % len(photos)])
            if ok < workers and outcome == "ok":
                print(
                    f"  search {ok + 1} after start: {1000 * (time.monotonic() - started):.0f} ms", flush=True
                )
        if outcome != "ok":
            print(f"  warm-up: {outcome} {detail}", flush=True)
            time.sleep(1)
            continue
        ok += 1
    if ok < 4 * workers:
        sys.exit("The site did not answer searches within 180 s.")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", default="1,4,16", help="concurrent clients per level")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each level")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (WEB_CONCURRENCY)")
    parser.add_argument(
        "--torch-threads", type=int, default=0, help="SEARCH_TORCH_THREADS (default: gunicorn.conf.py's)"
    )
    parser.add_argument("--photo-size", type=int, default=1000, help="long side of the query JPEGs")
    parser.add_argument("--var-dir", type=Path, help="site folder to use and keep (default: a temporary one)")
    parser.add_argument("--url", help="an already running site; build_index then runs with this environment")
    parser.add_argument("--no-swap", action="store_true", help="no index rebuild during the levels")
    parser.add_argument(
        "--model-alone-seconds", type=float, default=20.0, help="model-alone run before the server (0: skip)"
    )
    args = parser.parse_args()
    levels = [int(n) for n in args.levels.split(",")]
    photos = query_photos(args.photo_size)
    print(f"{time.strftime('%d %b %Y %H:%M UTC', time.gmtime())}; {machine()}", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        var_dir = args.var_dir or Path(tmp)
        var_dir.mkdir(parents=True, exist_ok=True)
        env, server, log, alone, alone_cpu = None, None, var_dir / "gunicorn.log", 0.0, []
        try:
            if args.url:
                url = args.url.rstrip("/")
            else:
                env = site_env(var_dir, args)
                print(f"Setting up the site in {var_dir} ...", flush=True)
                prepare(env)
                alone = measure_model_alone(env, args, "before the server", alone_cpu)
                server, url = start_gunicorn(env, log)
            print(
                f"Site {url}: {args.workers} gunicorn workers, SEARCH_TORCH_THREADS="
                f"{args.torch_threads or 'gunicorn.conf.py default'}; {len(photos)} query photos "
                f"({args.photo_size} px JPEG); {args.seconds:.0f} s per level, index swap at 1/3: "
                f"{'no' if args.no_swap else 'yes'}",
                flush=True,
            )
            warm_up(url, photos, args.workers)
            print(
                "clients | searches | searches/s | of model | p50 ms | p99 ms | p99/p50 | max ms | errors "
                "| failed | server CPU ms/search"
            )
            rows = [
                report(run_level(url, photos, n, args.seconds, env, not args.no_swap, server), alone)
                for n in levels
            ]
        finally:
            if server is not None:
                stop_gunicorn(server)
        restarts = worker_restarts(log, args.workers) if server is not None else 0
        if server is not None and alone > 0:
            # Again once the server stopped: on a shared machine the load changes within minutes, and the
            # mean of the two bounds what the model allowed while the levels ran.
            alone = (alone + measure_model_alone(env, args, "after the server", alone_cpu)) / 2
            print(f"  model alone, mean of both: {alone:.1f} searches/s")
            for row in rows:
                print(f"  {row['clients']:>2} clients: {100 * row['per_s'] / alone:.0f} % of the model alone")
        print("warm-up in the gunicorn log:\n  " + "\n  ".join(warm_up_lines(log)))
    errors = sum(row["error"] for row in rows)
    failed = sum(row["failed"] for row in rows)
    swaps_failed = sum(row["swap_failed"] for row in rows)
    held = errors == failed == swaps_failed == restarts == 0
    print(
        f"Goal 0 errors, 0 failed queries: {'held' if held else 'NOT held'} ({errors} errors, "
        f"{failed} failed, {swaps_failed} failed index swaps, {restarts} gunicorn worker restarts)"
    )
    for row in rows:
        if row["clients"] == 4:
            tail = row["p99"] / row["p50"]
            print(f"Goal p99 <= 3 x p50 at 4 clients: {'held' if tail <= 3 else 'NOT held'} ({tail:.1f} x)")
    loaded = [row for row in rows if row["clients"] >= 4]
    if alone_cpu and loaded:
        # Both sides CPU-bound on the same cores: throughput ratio = model CPU / server CPU per search.
        # Searches/s themselves depend on the share of the shared machine each side got.
        model_cpu = sum(alone_cpu) / len(alone_cpu)
        server_cpu = min(row["cpu_ms"] for row in loaded)
        ratio = model_cpu / server_cpu
        print(
            f"Goal throughput within 20 % of the model alone: {'held' if ratio >= 0.8 else 'NOT held'} "
            f"(CPU per search: model alone {model_cpu:.0f} ms, server {server_cpu:.0f} ms: "
            f"{100 * ratio:.0f} %)"
        )
    print(f"after: {uptime()}")


def measure_model_alone(env: dict[str, str], args, when: str, cpu: list[float]) -> float:
    """Searches/s of the model alone (and its CPU ms per search, appended to ``cpu``)."""
    if args.model_alone_seconds <= 0:
        return 0.0
    shaped = model_env(env, args)
    rate, cpu_ms = model_alone_rate(shaped, args.workers, args.model_alone_seconds, args.photo_size)
    print(
        f"  model alone {when}: {rate:.1f} searches/s, {cpu_ms:.0f} CPU ms/search ({args.workers} processes "
        f"x {shaped['SEARCH_TORCH_THREADS']} torch threads, {args.model_alone_seconds:.0f} s); {uptime()}",
        flush=True,
    )
    cpu.append(cpu_ms)
    return rate


def warm_up_lines(log: Path) -> list[str]:
    text = log.read_text() if log.exists() else ""
    return [line.split("] ", 1)[-1] for line in text.splitlines() if "warm" in line.lower()] or ["none"]


def model_env(env: dict[str, str], args) -> dict[str, str]:
    """The site's environment with the torch threads each gunicorn worker will use."""
    from shop_search.cpu import torch_threads_per_process

    threads = args.torch_threads or torch_threads_per_process(args.workers)
    return {**env, "SEARCH_TORCH_THREADS": str(threads)}


if __name__ == "__main__":
    main()
