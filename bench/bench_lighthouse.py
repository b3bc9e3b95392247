"""Lighthouse scores (performance, accessibility, best practices, SEO) of the shopper pages, served the
production way, with Lighthouse's mobile and desktop presets and its default throttling.

    (cd bench/lighthouse && npm ci)          # once: Lighthouse 12.2.3, pinned, for this script only
    .venv/bin/python bench/bench_lighthouse.py [--runs 3] [--presets mobile,desktop] [--var-dir DIR]
                                               [--url URL --product-path /products/1/]

Without --url it sets up the site as bench/bench_load.py does (a throwaway folder, SQLite, `migrate`,
`load_demo`: the demo catalog embedded and indexed), adds `collectstatic` (hashed, compressed files
served by WhiteNoise), and starts gunicorn (gunicorn.conf.py, DJANGO_DEBUG=0) on a free port of
127.0.0.1; it stops it at the end.

Pages: the shop page before a search; the shop page with results; a product page. Results need a
photo. An upload cannot be put in a URL, but a shared search can: `/?url=<image URL>` makes the server
fetch the photo, search it and render the results (the page's script then draws the photo and the
things found in it), exactly what a shopper opening a shared link gets. The photo
(tests/photos/box_in_scene.png, a cluttered scene) is served by a small HTTP server of this script on
127.0.0.1, allow-listed with SEARCH_URL_ALLOWED_HOSTS.

Each page is requested once before Lighthouse runs, so thumbnails made on first use are not counted.
Scores are medians of --runs runs (Lighthouse's own advice: performance varies between runs). The
machine's load is printed before and after: performance scores drop when other jobs share the cores.
Reports (JSON) go to bench/out/lighthouse/.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import requests
from bench_load import machine, manage, prepare, site_env, start_gunicorn, stop_gunicorn

BASE_DIR = Path(__file__).resolve().parent.parent
LIGHTHOUSE = BASE_DIR / "bench" / "lighthouse" / "node_modules" / ".bin" / "lighthouse"
OUT_DIR = BASE_DIR / "bench" / "out" / "lighthouse"
PHOTOS_DIR = BASE_DIR / "tests" / "photos"
SCENE = "box_in_scene.png"
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
CHROME_FLAGS = "--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run"


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def serve_photos() -> tuple[http.server.ThreadingHTTPServer, str]:
    """tests/photos over HTTP on 127.0.0.1: the shared-search photo's host."""
    handler = functools.partial(QuietHandler, directory=str(PHOTOS_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def lighthouse(url: str, preset: str, report: Path) -> dict:
    """One Lighthouse run: {category: score 0-100} and the audits that cost points."""
    command = [
        str(LIGHTHOUSE),
        url,
        "--output=json",
        f"--output-path={report}",
        f"--only-categories={','.join(CATEGORIES)}",
        f"--chrome-flags={CHROME_FLAGS}",
        "--quiet",
    ]
    if preset == "desktop":
        command.append("--preset=desktop")
    env = {**os.environ, "CHROME_PATH": os.environ.get("CHROME_PATH", "/usr/bin/chromium")}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        sys.exit(f"lighthouse failed on {url} ({preset}):\n{done.stderr[-2000:]}")
    result = json.loads(report.read_text())
    scores = {name: round(result["categories"][name]["score"] * 100) for name in CATEGORIES}
    lost = []
    for name in CATEGORIES:
        for ref in result["categories"][name]["auditRefs"]:
            audit = result["audits"][ref["id"]]
            if ref["weight"] > 0 and audit["score"] is not None and audit["score"] < 1:
                value = audit.get("displayValue", "")
                lost.append(f"{name}: {ref['id']} {audit['score']:.2f}{' (' + value + ')' if value else ''}")
    return {"scores": scores, "lost": lost}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="Lighthouse runs per page and preset (median)")
    parser.add_argument("--presets", default="mobile,desktop")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (WEB_CONCURRENCY)")
    parser.add_argument("--var-dir", type=Path, help="site folder to use and keep (default: a temporary one)")
    parser.add_argument(
        "--url", help="an already running site (its SEARCH_URL_ALLOWED_HOSTS must allow 127.0.0.1)"
    )
    parser.add_argument("--product-path", help="the product page to audit (default: the first product)")
    args = parser.parse_args()
    if not LIGHTHOUSE.exists():
        sys.exit(f"{LIGHTHOUSE} is missing: run `npm ci` in bench/lighthouse first")
    presets = args.presets.split(",")
    version = subprocess.run([str(LIGHTHOUSE), "--version"], capture_output=True, text=True).stdout.strip()
    print(f"{time.strftime('%d %b %Y %H:%M UTC', time.gmtime())}; {machine()}; Lighthouse {version}")
    print(f"load average at start: {load_average()}", flush=True)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    photos, photos_url = serve_photos()

    with tempfile.TemporaryDirectory(prefix="bench-lighthouse-") as tmp:
        var_dir = args.var_dir or Path(tmp)
        var_dir.mkdir(parents=True, exist_ok=True)
        server = None
        try:
            if args.url:
                url = args.url.rstrip("/")
            else:
                env = site_env(var_dir, SimpleNamespace(workers=args.workers, torch_threads=0))
                env.update(SEARCH_URL_ALLOWED_HOSTS="127.0.0.1", LOG_LEVEL="WARNING")
                print(f"Setting up the site in {var_dir} ...", flush=True)
                prepare(env)
                collected = manage(env, "collectstatic", "--no-input", "-v", "0")
                if collected.returncode != 0:
                    sys.exit(f"collectstatic failed:\n{collected.stderr}")
                server, url = start_gunicorn(env, var_dir / "gunicorn.log")
            product = args.product_path or requests.get(
                url + "/api/v1/products/?page_size=1", timeout=30
            ).json()["results"][0]["url"].removeprefix(url)
            pages = {
                "shop, before a search": "/",
                "shop, with results (shared search)": f"/?url={photos_url}/{SCENE}",
                "product page": product,
            }
            for path in pages.values():  # first use makes thumbnails and warms the model: not measured
                requests.get(url + path, timeout=120).raise_for_status()
            print(f"Site {url}; {args.runs} run(s) per page and preset, median scores")
            print("| page | preset | performance | accessibility | best practices | SEO |")
            print("|---|---|---|---|---|---|")
            for page, path in pages.items():
                for preset in presets:
                    runs = []
                    for n in range(args.runs):
                        slug = "".join(c if c.isalnum() else "-" for c in page).strip("-")
                        runs.append(lighthouse(url + path, preset, OUT_DIR / f"{slug}-{preset}-{n + 1}.json"))
                    median = {
                        name: statistics.median(run["scores"][name] for run in runs) for name in CATEGORIES
                    }
                    cells = " | ".join(f"{median[name]:g}" for name in CATEGORIES)
                    print(f"| {page} | {preset} | {cells} |", flush=True)
                    for line in sorted({line for run in runs for line in run["lost"]}):
                        print(f"|   | lost in a run: {line} | | | | |", flush=True)
        finally:
            if server is not None:
                stop_gunicorn(server)
            photos.shutdown()
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
