"""A fresh gunicorn worker is warm before its first request (gunicorn.conf.py, SEARCH_WARM_UP) and
shares the cores with the other workers (SEARCH_TORCH_THREADS = cores // workers). The real gunicorn
on a free port of 127.0.0.1, against a small catalog in a temporary folder; stopped at the end."""

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from shop_search.cpu import torch_threads_per_process
from tests.factories import PHOTOS_DIR
from tests.test_serving import BASE_DIR, free_port, manage, site_env, stop

PHOTOS = ["hammer1.webp", "cup.webp", "chair.webp"]


@pytest.fixture(scope="module")
def indexed_site(tmp_path_factory) -> Path:
    var_dir = tmp_path_factory.mktemp("warm-up-var")
    folder = var_dir / "photos" / "things"
    folder.mkdir(parents=True)
    for name in PHOTOS:
        (folder / name).write_bytes((PHOTOS_DIR / name).read_bytes())
    manage(var_dir, "migrate", "--no-input")
    manage(var_dir, "import_catalog", "--images", str(var_dir / "photos"), "--no-progress")
    manage(var_dir, "build_index")
    return var_dir


def first_answer(var_dir: Path, *, warm_up: str) -> tuple[dict, str, Path, subprocess.Popen]:
    """Start gunicorn (2 workers on the command line; WEB_CONCURRENCY says 1) and send /readyz the moment
    the port accepts connections: (its answer, the URL, the log, the server)."""
    port = free_port()
    log = var_dir / f"gunicorn-warm-{warm_up}.log"
    env = {**site_env(var_dir), "WEB_CONCURRENCY": "1", "SEARCH_WARM_UP": warm_up}
    env.pop("SEARCH_TORCH_THREADS", None)
    with log.open("w") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "gunicorn.conf.py",
                "-w",
                "2",
                "--bind",
                f"127.0.0.1:{port}",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while True:  # the master listens before any worker runs: a request now waits for the first worker
        assert server.poll() is None, log.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    return requests.get(url + "/readyz", timeout=180).json(), url, log, server


def test_a_fresh_worker_answers_its_first_request_warm(indexed_site, photo_bytes):
    ready, url, log, server = first_answer(indexed_site, warm_up="1")
    try:
        assert ready["checks"]["model"]["ok"] is True, ready  # loaded before the first request
        assert ready["checks"]["index"]["serving"], ready
        found = requests.post(
            url + "/api/v1/search/", files={"image": ("q.webp", photo_bytes("cup.webp"))}, timeout=60
        )
        assert found.status_code == 200 and found.json()["results"][0]["product"]["sku"] == "things-cup"
    finally:
        stop(server)
    text = log.read_text()
    warmed = re.findall(r"Search warmed up in \d+ ms \(model \S+, (\d+) torch threads, index (\S+)\)", text)
    assert len(warmed) == 2, text  # each worker, before it served
    threads = torch_threads_per_process(2)  # the command line's 2 workers, not WEB_CONCURRENCY's 1
    assert {w[0] for w in warmed} == {str(threads)} and ready["checks"]["index"]["serving"] == warmed[0][1]


def test_without_warm_up_the_first_request_finds_the_model_still_loading(indexed_site):
    ready, _, log, server = first_answer(indexed_site, warm_up="0")
    stop(server)
    assert ready["checks"]["model"]["ok"] is False and "loading" in ready["checks"]["model"]["detail"], ready
