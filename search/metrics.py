"""Prometheus metrics (docs/operations.md lists them and what to alert on).

Two kinds:
- searches as they happen, counted in the process that ran them: ``observed_search`` wraps the one
  search service (search.services.query.photo_search), so the API, the shopper page and the admin are
  all counted in this one place;
- the state of the catalog, the index, its builds and the task queue, computed when /metrics is
  scraped (search.state_metrics), because every process would report the same numbers.

Under gunicorn each worker is its own process: prometheus-client's multiprocess mode keeps every
worker's counters in files under PROMETHEUS_MULTIPROC_DIR (set by gunicorn.conf.py before the workers
start) and /metrics adds them up, whichever worker answers the scrape. Without that variable (runserver,
tests, a single process) the process's own registry is exported.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import OperationalError
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from search.uploads import QueryImageError

PREFIX = "shop_search"
# Seconds. A stage of a search takes from well under a millisecond (validate a small photo) to
# seconds (fetch a URL, embed on a busy CPU); the whole search 50-500 ms here (docs/benchmarks.md).
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

SEARCH_SECONDS = Histogram(
    f"{PREFIX}_search_seconds",
    "Time spent in each stage of a search by photo that found its results: read, validate, model, "
    "index, db, and total (the whole search).",
    ["stage"],
    buckets=STAGE_BUCKETS,
)
SEARCHES = Counter(
    f"{PREFIX}_searches",
    "Searches by photo, by outcome (ok, no_results, rejected, unavailable, error) and error code "
    "(the API's codes: not_an_image, too_large, timeout, search_unavailable, ...; empty when ok).",
    ["outcome", "code"],
)
SEARCHES_IN_PROGRESS = Gauge(
    f"{PREFIX}_searches_in_progress",
    "Searches running now, over every live web process.",
    multiprocess_mode="livesum",
)

Search = TypeVar("Search", bound=Callable[..., Any])


def search_outcome(result: Any = None, error: BaseException | None = None) -> tuple[str, str]:
    """(outcome, code) of one search: the codes are the API's (search.api.exceptions)."""
    # Not at the top: search.services imports this module (query.py) while it is being imported.
    from search.embedder import SearchUnavailable

    if error is None:
        return ("ok" if result.hits else "no_results"), ""
    if isinstance(error, QueryImageError):  # UrlFetchError too: the shopper's photo or URL (4xx)
        return "rejected", error.code
    if isinstance(error, SearchUnavailable):
        return "unavailable", "search_unavailable"
    if isinstance(error, OperationalError):
        return "unavailable", "database_busy"
    return "error", "server_error"


def observed_search(search: Search) -> Search:
    """Counts every call of a search service by outcome and records its stage timings."""

    @functools.wraps(search)
    def observed(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("shopper") is False:  # the site's own photos (relevance self-test): not shoppers'
            return search(*args, **kwargs)
        SEARCHES_IN_PROGRESS.inc()
        try:
            result = search(*args, **kwargs)
        except Exception as error:
            SEARCHES.labels(*search_outcome(error=error)).inc()
            raise
        finally:
            SEARCHES_IN_PROGRESS.dec()
        SEARCHES.labels(*search_outcome(result)).inc()
        for stage, milliseconds in result.timings.items():
            SEARCH_SECONDS.labels(stage).observe(milliseconds / 1000)
        return result

    return observed  # type: ignore[return-value]


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


class _ThisProcess:
    """The default registry (this process's metrics, and its CPU and memory) inside another registry."""

    def collect(self):
        return REGISTRY.collect()


def metrics_exposition() -> tuple[bytes, str]:
    """The body and content type of a /metrics answer."""
    from search.state_metrics import SearchStateCollector

    registry = CollectorRegistry()
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)  # every worker's files, added up
    else:
        registry.register(_ThisProcess())
    registry.register(SearchStateCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST
