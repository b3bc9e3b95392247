"""Metrics under the real gunicorn with two workers (gunicorn.conf.py): searches served by either worker
add up in /metrics whichever worker answers the scrape, a killed worker's counts are kept while its
in-progress gauge is dropped (child_exit), and a previous run's files are not counted. /healthz and
/readyz are checked on the same server. Started as tests/test_serving.py starts it, on 127.0.0.1."""

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.test_serving import BASE_DIR, fetch, free_port, manage, site_env, stop, wait_until_up

PHOTO = (BASE_DIR / "tests" / "photos" / "cup.webp").read_bytes()
# The worker pid first, as "<pid>": the test needs to know which worker answered each request.
ACCESS_LOG_FORMAT = '%(p)s "%(r)s" %(s)s'
SERVED = re.compile(r'^<(?P<pid>\d+)> "(?P<method>[A-Z]+) (?P<path>\S+) HTTP/1\.1" (?P<status>\d+)$', re.M)


@dataclass(frozen=True)
class Server:
    url: str
    log: Path
    metrics_dir: Path
    process: subprocess.Popen


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory) -> Iterator[Server]:
    var_dir = tmp_path_factory.mktemp("metrics-var")
    metrics_dir = tmp_path_factory.mktemp("metrics-multiproc")
    manage(var_dir, "migrate", "--no-input")
    env = {
        **site_env(var_dir),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "WEB_CONCURRENCY": "2",
        "SEARCH_ANON_RATE": "10000/minute",
    }
    # A counter file left by a previous run: counted again unless the master empties the folder.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from prometheus_client import Counter; "
            "Counter('shop_search_searches', '', ['outcome', 'code']).labels('ok', '').inc(1000)",
        ],
        env={**env, "PYTHONPATH": str(BASE_DIR)},
        check=True,
    )
    assert list(metrics_dir.glob("counter_*.db"))

    port = free_port()
    log = var_dir / "gunicorn.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                "--access-logformat",
                ACCESS_LOG_FORMAT,
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        server = Server(f"http://127.0.0.1:{port}", log, metrics_dir, process)
        wait_until_up(server.url + "/healthz", process, log)
        yield server
    finally:
        stop(process)


def search(server: Server, photo: bytes) -> int:
    body = json.dumps({"image": base64.b64encode(photo).decode(), "k": 3}).encode()
    request = urllib.request.Request(
        server.url + "/api/v1/search/", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def served(server: Server, method: str, path: str, at_least: int = 0) -> list[tuple[int, int]]:
    """(worker pid, status) of each such request in the access log, once it has ``at_least`` of them
    (a worker writes the line just after it sent the answer)."""
    deadline = time.monotonic() + 10
    while True:
        found = [
            (int(m["pid"]), int(m["status"]))
            for m in SERVED.finditer(server.log.read_text())
            if m["method"] == method and m["path"] == path
        ]
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def worker_pids(server: Server) -> set[int]:
    found = subprocess.run(["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True)
    return {int(pid) for pid in found.stdout.split()}


def scrape(server: Server) -> dict[tuple[str, tuple], float]:
    status, _, body = fetch(server.url + "/metrics")
    assert status == 200, body[:500]
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def searches(samples: dict, outcome: str, code: str = "") -> float:
    return samples.get(("shop_search_searches_total", (("code", code), ("outcome", outcome))), 0.0)


def timed(samples: dict, stage: str) -> float:
    return samples.get(("shop_search_search_seconds_count", (("stage", stage),)), 0.0)


def test_health_and_readiness_under_gunicorn(two_workers):
    status, headers, body = fetch(two_workers.url + "/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok"}

    deadline = time.monotonic() + 120  # each worker loads the model after it starts
    while True:
        status, _, body = fetch(two_workers.url + "/readyz")
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    ready = json.loads(body)
    assert status == 200, ready
    assert ready["checks"]["model"]["name"] == "efficientnet_lite0"
    assert ready["checks"]["broker"]["transport"] == "filesystem"
    assert ready["checks"]["index"]["serving"] is None  # nothing built on this empty site


def test_searches_served_by_both_workers_add_up_whichever_worker_answers(two_workers):
    workers = worker_pids(two_workers)
    assert len(workers) == 2
    sent_ok = sent_bad = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        # Keep sending until both workers have served searches (the kernel picks who accepts).
        while len({pid for pid, _ in served(two_workers, "POST", "/api/v1/search/")}) < 2:
            assert sent_ok < 200, "one worker served every search"
            statuses = list(
                pool.map(lambda photo: search(two_workers, photo), [PHOTO] * 6 + [b"no picture"] * 2)
            )
            assert statuses == [200] * 6 + [400] * 2, two_workers.log.read_text()[-3000:]
            sent_ok, sent_bad = sent_ok + 6, sent_bad + 2

    served_by = {
        pid for pid, _ in served(two_workers, "POST", "/api/v1/search/", at_least=sent_ok + sent_bad)
    }
    assert served_by == workers
    # Scrape until each worker has answered at least once: every answer has the totals of both.
    answered_by, earlier = set(), len(served(two_workers, "GET", "/metrics"))
    for scrapes in range(earlier + 1, earlier + 41):
        samples = scrape(two_workers)
        answered_by.add(served(two_workers, "GET", "/metrics", at_least=scrapes)[-1][0])
        assert searches(samples, "no_results") == sent_ok  # the empty site finds nothing, but searches
        assert searches(samples, "rejected", "not_an_image") == sent_bad
        assert searches(samples, "ok") == 0  # the previous run's 1000 were not counted
        assert timed(samples, "model") == timed(samples, "total") == sent_ok
        assert samples[("shop_search_searches_in_progress", ())] == 0
        if answered_by == workers:
            break
    assert answered_by == workers


def test_a_killed_worker_keeps_its_counts_and_drops_its_live_gauge(two_workers):
    before = scrape(two_workers)
    victim = served(two_workers, "POST", "/api/v1/search/")[0][0]
    live_file = two_workers.metrics_dir / f"gauge_livesum_{victim}.db"
    assert live_file.exists() and (two_workers.metrics_dir / f"counter_{victim}.db").exists()

    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while (
        victim in worker_pids(two_workers) or len(worker_pids(two_workers)) < 2
    ) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert victim not in worker_pids(two_workers) and len(worker_pids(two_workers)) == 2

    assert not live_file.exists()  # child_exit -> mark_process_dead
    after = scrape(two_workers)
    assert searches(after, "no_results") == searches(before, "no_results") > 0
    assert search(two_workers, PHOTO) == 200
    assert searches(scrape(two_workers), "no_results") == searches(before, "no_results") + 1


def test_metrics_refuse_a_request_that_came_through_a_proxy(two_workers):
    status, _, _ = fetch(two_workers.url + "/metrics", **{"X-Forwarded-For": "203.0.113.7"})
    assert status == 403
