"""Gauges computed when /metrics is scraped: the catalog, the index, its builds and the task queue.

They come from the database, the index folder and the broker, which every web process sees alike, so
they are not kept per process: whichever worker answers the scrape computes them (a dozen cheap
queries, one LLEN). Each group is computed on its own: a database or broker outage removes its group
and sets ``shop_search_state_scrape_errors``, the rest is still exported.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, InfoMetricFamily, Metric

from search.models import IndexBuild
from search.services.status import IndexState

logger = logging.getLogger(__name__)
P = "shop_search"
STATES = tuple(state.value for state in IndexState)
# Seconds. A small shop builds in seconds; a large one, re-embedding everything after a model switch,
# in hours (docs/benchmarks.md).
BUILD_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)


class SearchStateCollector:
    def collect(self) -> Iterator[Metric]:
        errors = GaugeMetricFamily(
            f"{P}_state_scrape_errors",
            "Groups of these gauges that could not be computed at this scrape (see the web log).",
            labels=["group"],
        )
        for group, produce in (
            ("index", _index_metrics),
            ("builds", _build_metrics),
            ("queue", _queue_metrics),
        ):
            try:
                metrics = list(produce())
            except Exception:  # noqa: BLE001 - a scrape must answer; the failure is logged and counted
                logger.warning("Metrics group %s could not be computed", group, exc_info=True)
                errors.add_metric([group], 1)
                continue
            errors.add_metric([group], 0)
            yield from metrics
        yield errors


def _gauge(name: str, documentation: str, value: float | None = None, labels=()) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{P}_{name}", documentation, value=value, labels=labels or None)


def _index_metrics() -> Iterator[Metric]:
    from search.services import index_status
    from search.services.state import serving_index_health

    status = index_status()
    now = timezone.now()
    yield _gauge(
        "model_available",
        "1 when an image model is loaded, 0 when search is unavailable.",
        int(not status.model_error),
    )
    yield _gauge(
        "model_fallback", "1 when the fallback model runs instead of the requested one.", int(status.fallback)
    )
    yield _gauge(
        "model_untrained", "1 when the model has random weights (SEARCH_UNTRAINED).", int(status.untrained)
    )
    yield _gauge("products", "Active products.", status.products)
    yield _gauge("photos", "Product photos.", status.images)
    embeddings = _gauge(
        "embeddings",
        "Photos by embedding status under the current model (pending: waiting for a worker; failed: "
        "could not be embedded, the photo cannot be found).",
        labels=["status"],
    )
    for name, value in (("done", status.embedded), ("pending", status.pending), ("failed", status.failed)):
        embeddings.add_metric([name], value)
    yield embeddings
    yield _gauge(
        "embeddings_fresh",
        "Photos searchable now (compared exactly) that the serving build does not hold yet.",
        status.fresh,
    )
    waited = (now - status.fresh_since).total_seconds() if status.fresh_since else 0
    yield _gauge(
        "embeddings_fresh_oldest_seconds",
        "How long the longest-waiting fresh photo has waited for a build.",
        max(0.0, waited),
    )
    state = _gauge(
        "index_state", "The index state (one of them is 1), as in the API's index status.", labels=["state"]
    )
    for name in STATES:
        state.add_metric([name], int(status.state == name))
    yield state
    current = status.current_build
    if current is not None:
        yield _gauge("index_vectors", "Vectors in the serving index build.", current.vectors)
        yield _gauge("index_size_bytes", "Size on disk of the serving index build.", current.size_bytes)
        yield _gauge(
            "index_model_matches",
            "1 when the serving build was made by the current model.",
            int(current.fingerprint_matches),
        )
        if current.built_at is not None:
            age = max(0.0, (now - current.built_at).total_seconds())
            yield _gauge("index_age_seconds", "Time since the serving index build was built.", age)
    health = serving_index_health()
    yield _gauge(
        "index_degraded",
        "1 when the published index build cannot serve (damaged or unreadable) and a previous build or "
        "exact search serves instead.",
        int(bool(health.problem)),
    )
    yield InfoMetricFamily(
        f"{P}_index",
        "The published index build and the one serving (empty: none).",
        value={"published": health.published or "", "serving": health.serving or ""},
    )


def _build_metrics() -> Iterator[Metric]:
    counts = dict(IndexBuild.objects.values_list("status").annotate(n=Count("id")).order_by())
    builds = _gauge("index_builds", "Index builds recorded, by status.", labels=["status"])
    for name in IndexBuild.Status.values:
        builds.add_metric([name], counts.get(name, 0))
    yield builds
    yield _build_durations()
    running = IndexBuild.objects.filter(status=IndexBuild.Status.RUNNING, started_at__isnull=False).first()
    elapsed = (timezone.now() - running.started_at).total_seconds() if running else 0
    yield _gauge(
        "index_build_running_seconds", "How long the running build has run (0: none runs).", max(0.0, elapsed)
    )


def _build_durations() -> HistogramMetricFamily:
    """Every finished build's run time, from the database: the rows only accumulate, so this is a
    cumulative histogram like any other, whichever process answers."""
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    finished = IndexBuild.objects.filter(
        status__in=[IndexBuild.Status.SUCCEEDED, IndexBuild.Status.FAILED],
        started_at__isnull=False,
        finished_at__isnull=False,
    ).annotate(duration=duration)
    buckets = {
        f"le_{i}": Count("id", filter=Q(duration__lte=timedelta(seconds=b)))
        for i, b in enumerate(BUILD_BUCKETS)
    }
    rows = finished.values("status").annotate(count=Count("id"), total=Sum("duration"), **buckets).order_by()
    family = HistogramMetricFamily(
        f"{P}_index_build_duration_seconds",
        "Run time of finished index builds (embedding what was pending, building, publishing), by status.",
        labels=["status"],
    )
    for row in rows:
        cumulative = [(str(float(b)), row[f"le_{i}"]) for i, b in enumerate(BUILD_BUCKETS)]
        total = row["total"].total_seconds() if row["total"] else 0.0
        family.add_metric([row["status"]], [*cumulative, ("+Inf", row["count"])], total)
    return family


def _queue_metrics() -> Iterator[Metric]:
    from search.broker import broker_transport, default_queue, queue_length

    queue = default_queue()
    waiting = queue_length(queue)
    if waiting is None:  # memory:// or a transport not measured: absent rather than a made-up 0
        return
    family = _gauge(
        "celery_queue_length",
        f"Tasks waiting in the broker ({broker_transport()}), not yet taken by a worker.",
        labels=["queue"],
    )
    family.add_metric([queue], waiting)
    yield family
