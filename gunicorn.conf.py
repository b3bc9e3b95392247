"""gunicorn settings for the production shape: `gunicorn -c gunicorn.conf.py` (what `make serve` runs).

Every value can be changed from the environment:
  HOST, PORT             where to listen (127.0.0.1:8000); behind a proxy or in a container, HOST=0.0.0.0
  WEB_CONCURRENCY        worker processes (2). Each loads its own model (tens to ~100 MB of RAM).
  GUNICORN_THREADS       threads per worker (4): slow uploads and URL fetches do not hold a whole worker
  GUNICORN_TIMEOUT       seconds before a silent worker is restarted (60)
  SEARCH_TORCH_THREADS   torch threads per worker; defaults to cores // workers (see on_starting)
  SEARCH_WARM_UP         1 (default): a worker warms the model and index up before its first request
  PROMETHEUS_MULTIPROC_DIR  where workers keep their metrics (a new temporary folder unless set)
"""

import glob
import logging
import os
import shutil
import tempfile
import threading

wsgi_app = "shop_search.wsgi:application"
bind = [f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"]
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Longer than the longest request: a URL search's fetch deadline (SEARCH_URL_TIMEOUT, ≤ 10 s) plus a
# search, or a large upload on a slow line. With threads, gunicorn runs the gthread worker, whose
# heartbeat comes from its main loop, so this only catches a worker that is truly stuck.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Each worker imports Django (and later torch) after the fork: torch's thread pools and OpenMP
# state do not survive a fork, and a preloaded model would not be shared anyway once touched.
preload_app = False
accesslog = "-"  # stdout, one line per request; errors and worker life go to stderr
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
# gunicorn's runtime control socket has one default path per user: two servers on one machine (a test,
# a benchmark, `make serve`) would take it from each other. Nothing here uses it.
control_socket_disable = True
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"  # the heartbeat file; a slow disk must not make workers look dead


# Prometheus metrics (docs/operations.md): each worker writes its counters and histograms to files in
# PROMETHEUS_MULTIPROC_DIR and /metrics adds every worker's up, whichever worker answers the scrape.
# prometheus-client reads the variable when a worker imports it, so it is set here, in the master,
# before any worker starts. A folder of our own unless the environment names one (then it must not be
# shared with another server); emptied at start, since a previous run's files would be counted again.
_own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _own_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="shop_search_metrics_")


def on_starting(server) -> None:
    # torch uses every core in every process by default. With N workers on C cores that is N x C busy
    # threads fighting for C cores: each search is slower and p99 suffers (docs/benchmarks.md, "Load").
    # The settings share the cores out (SEARCH_TORCH_THREADS = C // WEB_CONCURRENCY, shop_search/cpu.py);
    # here they learn how many workers this server really starts (-w on the command line included).
    # An explicit SEARCH_TORCH_THREADS still wins.
    os.environ["WEB_CONCURRENCY"] = str(server.cfg.workers)
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(folder, exist_ok=True)
    for stale in glob.glob(os.path.join(folder, "*.db")):
        os.remove(stale)


def child_exit(server, worker) -> None:
    """A worker ended (restarted, killed, timed out): its in-progress gauge no longer counts. Its
    counters and histograms stay, so totals never go down."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    if _own_metrics_dir:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def post_worker_init(worker) -> None:
    """Warm search up before this worker accepts its first request (SEARCH_WARM_UP, on by default):
    model loaded and run, index opened and queried (search/services/warm_up.py). Requests that arrive
    meanwhile wait in the listen queue or go to a worker that is ready, instead of paying the cold start.
    A warm-up that fails is logged and the worker serves anyway: the first search reports the problem."""
    from django.conf import settings

    log = logging.getLogger("gunicorn.error")
    if not settings.SEARCH_WARM_UP:
        threading.Thread(target=_load_model, args=(log,), name="model-load", daemon=True).start()
        return
    done = threading.Event()
    outcome: list = []

    def warm() -> None:
        try:
            from search.services.warm_up import search_warm_up

            outcome.append(search_warm_up())
        except Exception:  # noqa: BLE001 - any failure shows up again, explained, on the first search
            log.warning("Search warm-up failed", exc_info=True)
        finally:
            done.set()

    threading.Thread(target=warm, name="search-warm-up", daemon=True).start()
    # The arbiter restarts a worker silent for `timeout` seconds: keep telling it this one is alive.
    while not done.wait(1.0):
        worker.notify()
    if outcome:
        report = outcome[0]
        log.info(
            "Search warmed up in %.0f ms (model %s, %s torch threads, index %s): %s",
            report.timings["total"],
            report.model,
            settings.SEARCH_TORCH_THREADS,
            report.index_version or "none",
            ", ".join(f"{step} {ms:.0f} ms" for step, ms in report.timings.items() if step != "total"),
        )


def _load_model(log) -> None:
    try:
        from search.embedder import current_embedder

        current_embedder()
    except Exception:  # noqa: BLE001 - any failure shows up again, explained, on the first search
        log.warning("Model load failed", exc_info=True)
