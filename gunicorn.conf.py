"""gunicorn settings for the production shape: `gunicorn -c gunicorn.conf.py` (what `make serve` runs).

Every value can be changed from the environment:
  HOST, PORT             where to listen (127.0.0.1:8000); behind a proxy or in a container, HOST=0.0.0.0
  WEB_CONCURRENCY        worker processes (2). Each loads its own model (tens to ~100 MB of RAM).
  GUNICORN_THREADS       threads per worker (4): slow uploads and URL fetches do not hold a whole worker
  GUNICORN_TIMEOUT       seconds before a silent worker is restarted (60)
  SEARCH_TORCH_THREADS   torch threads per worker; defaults here to cores / workers (see below)
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

# torch uses every core in every process by default. With N workers on C cores that is N x C busy
# threads fighting for C cores: each search is slower and p99 suffers (docs/benchmarks.md, "Load").
# Share the cores instead: C / N threads per worker, at least one. The environment still decides.
os.environ.setdefault("SEARCH_TORCH_THREADS", str(max(1, (os.cpu_count() or 1) // max(1, workers))))


# Prometheus metrics (docs/operations.md): each worker writes its counters and histograms to files in
# PROMETHEUS_MULTIPROC_DIR and /metrics adds every worker's up, whichever worker answers the scrape.
# prometheus-client reads the variable when a worker imports it, so it is set here, in the master,
# before any worker starts. A folder of our own unless the environment names one (then it must not be
# shared with another server); emptied at start, since a previous run's files would be counted again.
_own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _own_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="shop_search_metrics_")


def on_starting(server) -> None:
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
    """Load the model in the background as soon as a worker starts, so the first shopper does not
    wait for it. A model that cannot load is reported by search itself (503), not here."""

    def warm() -> None:
        try:
            from search.embedder import current_embedder

            current_embedder()
        except Exception:  # noqa: BLE001 - any failure shows up again, explained, on the first search
            logging.getLogger("gunicorn.error").warning("Model warm-up failed", exc_info=True)

    threading.Thread(target=warm, name="model-warm-up", daemon=True).start()
