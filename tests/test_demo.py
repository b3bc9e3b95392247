"""The demo a newcomer runs with `make demo`: `load_demo` and `run_demo` (the catalog: test_demo_catalog).

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
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
DEMO_DIR = BASE_DIR / "catalog" / "demo"
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


def queued_tasks(var_dir: Path) -> list[str]:
    """The names of the tasks waiting in the demo's filesystem broker (var/broker/out)."""
    return [
        json.loads(path.read_text())["headers"]["task"] for path in (var_dir / "broker" / "out").iterdir()
    ]


@pytest.mark.slow
def test_load_demo_imports_embeds_and_indexes_the_whole_catalog(loaded_demo):
    var_dir, first = loaded_demo
    rows = len(demo_rows())

    assert f"Products: {rows} created" in first.stdout
    assert re.search(rf"Index \S+: {rows} vectors", first.stdout), first.stdout
    counts = catalog_counts(var_dir)
    assert (counts["products"], counts["images"], counts["embeddings"]) == (rows, rows, rows)
    assert counts["categories"] >= 20  # "Tools > Hammers" makes both "Tools" and "Hammers"
    # It embedded and indexed everything itself: nothing is left for the worker to redo (it used to
    # queue one embed task per photo, and a build).
    assert queued_tasks(var_dir) == []
    assert "No hostname was supplied" not in first.stderr


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
    assert catalog_counts(var_dir) == before
    assert queued_tasks(var_dir) == []


def test_load_demo_without_the_index_step_queues_one_task_for_the_worker(tmp_path):
    migrated = manage(tmp_path, "migrate", "--no-input")
    assert migrated.returncode == 0, migrated.stderr

    result = manage(tmp_path, "load_demo", "--no-index")

    assert result.returncode == 0, result.stderr
    assert queued_tasks(tmp_path) == ["search.embed_images"]  # one message for all photos, not one each
    assert f"{len(demo_rows())} new photos are queued for the worker" in result.stdout


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
    return process, read_start(process)


def read_start(process: subprocess.Popen) -> list[str]:
    """The output of a demo start, up to the end of the box that closes it."""
    lines = []
    deadline = time.monotonic() + 120
    running = False
    for line in process.stdout:
        lines.append(line)
        running = running or "shop_search is running at" in line
        if (running and line.startswith("+-")) or time.monotonic() > deadline:
            break
    return lines


def start_box(lines: list[str]) -> list[str]:
    """The lines of the closing box: from its top border to its bottom border."""
    ends = [i for i, line in enumerate(lines) if line.startswith("+-")]
    assert len(ends) >= 2, "".join(lines)
    return lines[ends[-2] : ends[-1] + 1]


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
        box = "".join(start_box(lines))
        assert banner in box, "".join(lines)
        # The one-time password is in the box that ends the start, not scrolled away above it.
        assert re.search(r"\| Demo admin created: user 'admin', password '\S{12,}' +\|", box), box
        assert lines[-1].startswith("+-") and box in "".join(lines[-len(start_box(lines)) :])
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
    assert list(
        var_dir.glob("celerybeat-schedule*")
    )  # beat ran: the reapers that heal a killed worker's work
    everything = "".join(lines) + output
    assert "No hostname was supplied" not in everything
    assert " received" not in everything  # no task lines: load_demo left nothing to redo
    assert processes_mentioning(str(var_dir)) == []


@pytest.mark.slow
def test_run_demo_exits_non_zero_when_a_child_dies(loaded_demo):
    var_dir, _ = loaded_demo
    port = free_port()
    process, lines = start_run_demo(var_dir, port)
    try:
        web = [pid for pid in processes_mentioning(f"runserver 127.0.0.1:{port}") if pid != process.pid]
        assert web, "".join(lines)
        assert "an admin user exists already" in "".join(start_box(lines))  # made once, by the first start
        os.kill(web[0], signal.SIGKILL)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode != 0
    assert "The web server stopped unexpectedly" in output
    assert processes_mentioning(str(var_dir)) == []


def test_run_demo_refuses_a_port_in_use_and_names_a_free_one(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        result = manage(tmp_path, "run_demo", "--port", str(port), timeout=60)

    assert result.returncode != 0
    assert f"127.0.0.1:{port} is already in use" in result.stderr
    suggested = int(re.search(r"make demo PORT=(\d+)", result.stderr).group(1))
    assert suggested != port
    assert f"run_demo --port {suggested}" in result.stderr


def make_demo(var_dir: Path, *args: str, **popen) -> subprocess.Popen:
    # -o venv: use the environment as it is (no pip install from a test).
    return subprocess.Popen(
        ["make", "--no-print-directory", "-o", "venv", "demo", f"PY={sys.executable}", *args],
        cwd=BASE_DIR,
        env=demo_env(var_dir),
        text=True,
        **popen,
    )


def test_make_demo_checks_the_port_before_the_slow_steps(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        process = make_demo(
            tmp_path, f"PORT={port}", "HOST=127.0.0.1", stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, err = process.communicate(timeout=120)

    assert process.returncode != 0
    assert f"127.0.0.1:{port} is already in use" in err
    assert "make demo PORT=" in err
    # Refused before migrate and load_demo: no database was made, nothing was imported.
    assert not (tmp_path / "db.sqlite3").exists()
    assert "Importing the demo catalog" not in out


@pytest.mark.slow
def test_make_demo_serves_on_the_port_and_host_given(loaded_demo):
    var_dir, _ = loaded_demo
    port = free_port()
    process = make_demo(
        var_dir,
        f"PORT={port}",
        "HOST=127.0.0.1",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        lines = read_start(process)
        assert f"shop_search is running at http://127.0.0.1:{port} " in "".join(start_box(lines))
        assert get(f"http://127.0.0.1:{port}/")[0] == 200
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in the terminal reaches make and run_demo
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert "Stopped." in output
    assert processes_mentioning(str(var_dir)) == []


def test_the_embedded_broker_connects_without_a_missing_hostname_warning(tmp_path):
    """kombu warned "No hostname was supplied" on every connection to filesystem:// (issue 11)."""
    result = manage(tmp_path, "shell", "-c", "from search.tasks import reap; reap.delay()")

    assert result.returncode == 0, result.stderr
    assert queued_tasks(tmp_path) == ["search.reap"]  # it did connect and publish
    assert "No hostname was supplied" not in result.stderr + result.stdout
