"""Which build runs, and that it does: claiming under a lock, queueing, leases, and the reaper.

At most one build runs. Claiming and queueing are serialised by ``builds_lock`` (a PostgreSQL advisory
lock; SQLite: the database write lock). Crash safety (shop_search.leases): the worker running a build
holds a lease it renews every SEARCH_LEASE_SECONDS/4. A build whose lease ran out was lost (worker
killed): it is marked failed with the reason, and the queued follow-up, or else one new build taking its
place (only if the build before it was not lost too, so a build that kills its worker does not loop),
is enqueued. Lost leases are expired by the reaper (``index_builds_reap``, the ``search.reap`` beat
task), by every build request and by every claim: a redelivered ``index_build_run`` task that finds its
build "running" under a dead lease expires it and lets the next one run; while the lease is still
fresh it does nothing and the reaper finishes the job. A queued build with no task behind it (the
message was lost) is enqueued again when nothing runs and it has waited longer than a lease.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from search.embedder import SearchUnavailable, current_embedder
from search.models import IndexBuild
from search.selectors import fresh_embeddings, fresh_since
from shop_search.leases import LOST_LEASE, lease_cutoff, lost_lease_reason

from .state import SHARED_STORE_BACKENDS, serving_index

logger = logging.getLogger(__name__)

# A rebuild is requested automatically when this many embeddings are newer than the serving build
# (absolute), or more than this share of the build's vectors: small shops rebuild often, big ones
# in batches; in between, new photos are searched exactly and are findable at once.
REBUILD_MIN_FRESH = 500
REBUILD_FRESH_SHARE = 0.10

_LOCK_KEY = 0x5EA2C4  # PostgreSQL advisory lock id for build bookkeeping


@dataclass
class BuildsReaped:
    expired: list[int] = field(default_factory=list)  # builds failed for a lost lease
    enqueued: int | None = None  # the queued build sent to the workers (again)


def index_builds_reap(*, now: datetime | None = None) -> BuildsReaped:
    """The periodic clean-up (``search.reap``): fails builds whose worker was lost and makes sure a
    queued build has a task behind it. Safe to run anywhere, any number of times."""
    with transaction.atomic():
        builds_lock()
        now = now or timezone.now()
        reaped = BuildsReaped(expired=lost_builds_expire(now))
        enqueued = orphaned_build_enqueue(now)
        reaped.enqueued = enqueued.pk if enqueued is not None else None
    return reaped


def build_lease_lapsed(build: IndexBuild, now: datetime | None = None) -> bool:
    """A "running" build whose worker stopped renewing its lease (before the reaper marks it failed)."""
    cutoff = lease_cutoff(settings.SEARCH_LEASE_SECONDS, now)
    return build.status == IndexBuild.Status.RUNNING and _last_beat(build) < cutoff


def build_lost_reason(build: IndexBuild, detail: str = "") -> str:
    return lost_lease_reason(_last_beat(build), settings.SEARCH_LEASE_SECONDS, detail)


def build_claim(build_id: int, owner: str) -> bool:
    """Marks the build running only if it is queued and no other build runs (atomically)."""
    with transaction.atomic():
        builds_lock()
        now = timezone.now()
        lost_builds_expire(now)
        if running_builds().exists():
            return False
        claimed = IndexBuild.objects.filter(pk=build_id, status=IndexBuild.Status.QUEUED).update(
            status=IndexBuild.Status.RUNNING, started_at=now, heartbeat_at=now, lease_owner=owner
        )
        return claimed == 1


def builds_lock() -> None:
    """Serialises build bookkeeping across workers. PostgreSQL: a transaction-level advisory lock.
    SQLite: the first write in the transaction takes the database write lock (a dummy update)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
    else:
        IndexBuild.objects.filter(pk=-1).update(status=IndexBuild.Status.QUEUED)


def lost_builds_expire(now: datetime) -> list[int]:
    """Fails running builds whose lease ran out and enqueues what runs next. Call under builds_lock."""
    cutoff = lease_cutoff(settings.SEARCH_LEASE_SECONDS, now)
    lost = list(running_builds().annotate(beat=_LAST_BEAT).filter(beat__lt=cutoff))
    if not lost:
        return []
    lost_ids = [build.pk for build in lost]
    after = oldest_queued_build()
    if after is not None:
        detail = f"Build #{after.pk}, queued meanwhile, runs next."
    elif _previous_build_was_lost(lost_ids):
        detail = (
            "Not retried automatically: the build before it was lost too (was the worker killed for "
            "memory or time? see its log); fix the cause, then rebuild."
        )
    else:
        after = IndexBuild.objects.create(status=IndexBuild.Status.QUEUED)
        detail = f"Build #{after.pk} was queued to take its place."
    for build in lost:
        logger.warning("Index build %s lost its lease (owner %s)", build.pk, build.lease_owner or "?")
        IndexBuild.objects.filter(pk=build.pk, status=IndexBuild.Status.RUNNING).update(
            status=IndexBuild.Status.FAILED, error=build_lost_reason(build, detail), finished_at=now
        )
    if after is not None:
        build_enqueue(after, now)
    return lost_ids


def _previous_build_was_lost(exclude: list[int]) -> bool:
    finished = IndexBuild.objects.filter(status__in=[IndexBuild.Status.SUCCEEDED, IndexBuild.Status.FAILED])
    previous = finished.exclude(pk__in=exclude).order_by("-finished_at", "-id").first()
    return previous is not None and previous.error.startswith(LOST_LEASE)


def orphaned_build_enqueue(now: datetime) -> IndexBuild | None:
    """Sends the oldest queued build again when nothing runs and its task has not started within a
    lease (the message was lost). Duplicate deliveries are harmless: only a queued build is claimed."""
    if running_builds().exists():
        return None
    queued = oldest_queued_build()
    if queued is None or (queued.enqueued_at or queued.requested_at) >= lease_cutoff(
        settings.SEARCH_LEASE_SECONDS, now
    ):
        return None
    logger.warning("Index build %s was queued with no task behind it; enqueued again", queued.pk)
    build_enqueue(queued, now)
    return queued


def follow_up_enqueue() -> None:
    follow_up = oldest_queued_build()
    if follow_up is not None:
        build_enqueue(follow_up, timezone.now())


def running_builds() -> QuerySet[IndexBuild]:
    return IndexBuild.objects.filter(status=IndexBuild.Status.RUNNING)


def oldest_queued_build() -> IndexBuild | None:
    return IndexBuild.objects.filter(status=IndexBuild.Status.QUEUED).order_by("requested_at", "id").first()


def build_enqueue(build: IndexBuild, now: datetime) -> None:
    from search.tasks import index_build_run

    IndexBuild.objects.filter(pk=build.pk).update(enqueued_at=now)
    index_build_run.delay_on_commit(build.pk)


# Rows running since before leases existed have no heartbeat: their start counts as the last one.
_LAST_BEAT = Coalesce("heartbeat_at", "started_at", "requested_at")


def _last_beat(build: IndexBuild) -> datetime:
    return build.heartbeat_at or build.started_at or build.requested_at


# --- requesting builds -------------------------------------------------------------------------


def index_build_request(*, enqueue: bool = True) -> IndexBuild:
    """Asks for a rebuild; coalesces with a queued build so at most one is waiting.

    enqueue=False is for callers that run the build inline right after (the build_index command)."""
    with transaction.atomic():
        builds_lock()
        now = timezone.now()
        lost_builds_expire(now)
        queued = oldest_queued_build()
        if queued is not None:
            if enqueue:
                orphaned_build_enqueue(now)  # "Rebuild now" after the queued build's message was lost
            return queued
        build = IndexBuild.objects.create(status=IndexBuild.Status.QUEUED)
        if enqueue and not running_builds().exists():
            build_enqueue(build, now)
        # Otherwise the running build enqueues this follow-up when it ends.
        return build


def index_build_schedule_if_stale() -> IndexBuild | None:
    """Requests a rebuild when the serving index was built by another model (the build re-embeds the
    whole catalog under the current one), or when many embeddings are not in the serving index yet."""
    serving = serving_index()
    if serving is not None and serving.fingerprint != current_embedder().fingerprint:
        return index_build_request()  # coalesced: at most one queued build
    if settings.SEARCH_VECTOR_BACKEND in SHARED_STORE_BACKENDS:
        return None  # saves and deletes reach the hnsw store / Milvus collection without a build
    fresh, indexed = _fresh_embedding_count()
    if fresh == 0 or fresh < rebuild_fresh_threshold(indexed):
        return None
    return index_build_request()


def rebuild_fresh_threshold(indexed: int) -> int:
    """How many fresh embeddings request a build by size, for a serving build of ``indexed`` vectors of
    the same model (0: none, and then any fresh embedding does): more than REBUILD_MIN_FRESH, or more
    than REBUILD_FRESH_SHARE of the build."""
    if not indexed:
        return 1
    return min(REBUILD_MIN_FRESH, math.floor(indexed * REBUILD_FRESH_SHARE)) + 1


def index_fold_in_if_due(*, now: datetime | None = None) -> IndexBuild | None:
    """The time-based policy (the ``search.fold_in`` beat task): requests a build as soon as a photo has
    been searchable outside the index for longer than SEARCH_FOLD_IN_AFTER_SECONDS, however few wait,
    so the exactly-searched delta stays small and every photo joins the index within a bounded time.

    Not while a build is queued or running (it folds them in, or the next check sees what it left),
    and not within that same period after a failed build (no rebuild loop while the cause lasts)."""
    after = timedelta(seconds=settings.SEARCH_FOLD_IN_AFTER_SECONDS)
    if not after:
        return None
    now = now or timezone.now()
    if IndexBuild.objects.filter(status__in=[IndexBuild.Status.QUEUED, IndexBuild.Status.RUNNING]).exists():
        return None
    last = IndexBuild.objects.filter(finished_at__isnull=False).order_by("-finished_at", "-id").first()
    if last is not None and last.status == IndexBuild.Status.FAILED and last.finished_at > now - after:
        return None
    try:
        fingerprint = current_embedder().fingerprint
    except SearchUnavailable:
        logger.warning("Fold-in skipped: no image model can be loaded")
        return None
    since = fresh_since(fingerprint, serving_index())
    if since is None or since > now - after:
        return None
    if settings.SEARCH_VECTOR_BACKEND in SHARED_STORE_BACKENDS:
        from .stores import shared_store_sync

        shared_store_sync(current_embedder())  # the store missed them (a lost sync): only the sync
        return None
    return index_build_request()


def _fresh_embedding_count() -> tuple[int, int]:
    """(embeddings not in the serving index, vectors in it) under the current model."""
    embedder = current_embedder()
    serving = serving_index()
    fresh = fresh_embeddings(embedder.fingerprint, serving).count()
    same_model = serving is not None and serving.fingerprint == embedder.fingerprint and serving.build
    return fresh, serving.build.vectors if same_model else 0
