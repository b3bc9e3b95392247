"""The demo a newcomer runs with `make demo`: the committed catalog, `load_demo` and `run_demo`.

The commands run as real processes on the embedded defaults (SQLite, filesystem broker) inside a
temporary var/ folder, exactly as `make demo` runs them, with the real (offline fallback) model."""

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image

BASE_DIR = Path(__file__).resolve().parent.parent
DEMO_DIR = BASE_DIR / "catalog" / "demo"
ALLOWED_LICENCES = re.compile(r"^(Public Domain|CC0-1\.0|CC-BY(-SA)?[-\d.]*|MIT|Apache-2\.0 / BSD-3-Clause)$")
CLEARED = {"DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "MEDIA_ROOT"}


def demo_rows() -> list[dict]:
    with (DEMO_DIR / "products.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def attribution_rows() -> dict[str, list[str]]:
    rows = {}
    for line in (DEMO_DIR / "ATTRIBUTION.md").read_text().splitlines():
        if line.startswith("| images/"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[cells[0].removeprefix("images/")] = cells[1:]
    return rows


# --- The committed catalog --------------------------------------------------------------------


def test_every_demo_product_has_a_real_photo_with_a_redistributable_licence():
    rows = demo_rows()
    attribution = attribution_rows()

    assert len(rows) >= 150
    for row in rows:
        path = DEMO_DIR / "images" / row["image"]
        with Image.open(path) as image:
            image.verify()
        sku, author, source, licence = attribution[row["image"]]
        assert sku == row["sku"]
        assert author and source
        assert ALLOWED_LICENCES.match(licence), f"{row['image']}: licence {licence!r}"
    assert sorted(attribution) == sorted(p.name for p in (DEMO_DIR / "images").iterdir())


def test_demo_catalog_is_small_enough_to_commit():
    total = sum(p.stat().st_size for p in (DEMO_DIR / "images").iterdir())

    assert total < 25 * 1024 * 1024
    for path in (DEMO_DIR / "images").iterdir():
        with Image.open(path) as image:
            assert max(image.size) <= 800, path.name


def test_demo_products_have_unique_skus_categories_and_prices_worth_filtering():
    rows = demo_rows()
    prices = [Decimal(row["price"]) for row in rows]

    assert len({row["sku"] for row in rows}) == len(rows)
    assert all(price > 0 for price in prices)
    assert max(prices) / min(prices) > 50  # cheap and dear items, so a price filter matters
    top_level = {row["category"].split(" > ")[0] for row in rows}
    assert {"Tools", "Kitchen", "Home", "Fashion", "Fruit"} <= top_level


# --- load_demo and run_demo as real processes ---------------------------------------------------


def demo_env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    # The same settings `make demo` uses, only in a temporary var/ and without a download attempt.
    env.update(
        DJANGO_DEBUG="1", SHOP_SEARCH_VAR_DIR=str(var_dir), SEARCH_ALLOW_DOWNLOAD="0", PYTHONUNBUFFERED="1"
    )
    return env


def manage(var_dir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=demo_env(var_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def catalog_counts(var_dir: Path) -> dict:
    code = (
        "import json; from catalog.models import Product, ProductImage, Category;"
        "from search.models import ImageEmbedding;"
        "print(json.dumps({'products': Product.objects.count(), 'images': ProductImage.objects.count(),"
        " 'categories': Category.objects.count(),"
        " 'embeddings': ImageEmbedding.objects.filter(status='done').count()}))"
    )
    result = manage(var_dir, "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def loaded_demo(tmp_path_factory):
    """A var/ folder after `migrate` + `load_demo`, as `make demo` leaves it; and the first output."""
    var_dir = tmp_path_factory.mktemp("demo-var")
    migrated = manage(var_dir, "migrate", "--no-input")
    assert migrated.returncode == 0, migrated.stderr
    first = manage(var_dir, "load_demo")
    assert first.returncode == 0, first.stdout + first.stderr
    return var_dir, first


@pytest.mark.slow
def test_load_demo_imports_embeds_and_indexes_the_whole_catalog(loaded_demo):
    var_dir, first = loaded_demo
    rows = len(demo_rows())

    assert f"Products: {rows} created" in first.stdout
    assert re.search(rf"Index \S+: {rows} vectors", first.stdout), first.stdout
    counts = catalog_counts(var_dir)
    assert (counts["products"], counts["images"], counts["embeddings"]) == (rows, rows, rows)
    assert counts["categories"] >= 20  # "Tools > Hammers" makes both "Tools" and "Hammers"
    assert re.search(r"Demo admin created: user 'admin', password '\S{12,}'", first.stdout)


@pytest.mark.slow
def test_load_demo_twice_does_not_duplicate_anything(loaded_demo):
    var_dir, _ = loaded_demo
    before = catalog_counts(var_dir)

    second = manage(var_dir, "load_demo")

    assert second.returncode == 0, second.stderr
    assert (
        f"Products: 0 created, 0 updated, {before['products']} unchanged, 0 failed; 0 photos added"
        in second.stdout
    )
    assert f"0 embedded, {before['images']} already done" in second.stdout
    assert re.search(r"Index \S+ is up to date: \d+ vectors", second.stdout), second.stdout
    assert "An admin user exists already" in second.stdout
    assert catalog_counts(var_dir) == before


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains `text` (the demo's unique port or var/ path)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                environ = (proc / "environ").read_bytes().decode(errors="replace")
                state = (proc / "stat").read_text().split(") ")[-1][:1]
            except OSError:
                continue
            if state != "Z" and (text in cmdline or text in environ):
                pids.append(int(proc.name))
    return pids


def start_run_demo(var_dir: Path, port: int) -> tuple[subprocess.Popen, list[str]]:
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_demo", "--port", str(port)],
        cwd=BASE_DIR,
        env=demo_env(var_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    deadline = time.monotonic() + 120
    for line in process.stdout:
        lines.append(line)
        if "shop_search is running at" in line or time.monotonic() > deadline:
            break
    return process, lines


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read()


@pytest.mark.slow
def test_run_demo_serves_the_site_and_ctrl_c_stops_every_child(loaded_demo):
    var_dir, _ = loaded_demo
    port = free_port()
    process, lines = start_run_demo(var_dir, port)
    try:
        banner = (
            f"shop_search is running at http://127.0.0.1:{port} (admin: /admin/, API docs: /api/v1/docs/)"
        )
        assert any(banner in line for line in lines), "".join(lines)
        children = processes_mentioning(str(var_dir))
        assert len(children) >= 3  # run_demo, the worker, the web server
        status, page = get(f"http://127.0.0.1:{port}/")
        assert status == 200
        status, body = get(f"http://127.0.0.1:{port}/api/v1/index/status/")
        assert status == 200 and json.loads(body)

        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 0, output
    assert "Stopped." in output
    assert "beat: Starting" in "".join(lines) + output  # the reapers that heal a killed worker's work
    assert processes_mentioning(str(var_dir)) == []


@pytest.mark.slow
def test_run_demo_exits_non_zero_when_a_child_dies(loaded_demo):
    var_dir, _ = loaded_demo
    port = free_port()
    process, lines = start_run_demo(var_dir, port)
    try:
        web = [pid for pid in processes_mentioning(f"runserver 127.0.0.1:{port}") if pid != process.pid]
        assert web, "".join(lines)
        os.kill(web[0], signal.SIGKILL)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode != 0
    assert "The web server stopped unexpectedly" in output
    assert processes_mentioning(str(var_dir)) == []


def test_run_demo_refuses_a_port_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        result = manage(tmp_path, "run_demo", "--port", str(port), timeout=60)

    assert result.returncode != 0
    assert f"127.0.0.1:{port} is already in use" in result.stderr
