"""The relevance self-test: do shoppers' photos of the catalog's own products find them?

A seeded sample of the active products' photos (SEARCH_RELEVANCE_PHOTOS; the same seed takes the same
photos) is turned into shopper-like variants (search.relevance.variants: re-shot, and pasted into a
scene photo), each searched through the one query service shoppers use (photo_search: whole photo and
the things found in it, k=10). The figures (search.relevance.figures) and the hardest products are
stored with the run (RelevanceRun), per model fingerprint and date; runs with the same variant_set
searched identical photos, so two models are compared fairly.

The variants are made from the very photos the index holds, so the figures are an upper bound of what
a shopper's own photo (another angle, another light) gets; the report says so. One run at a time: it
shares the CPU with the shop. The worker holds a lease (shop_search.leases); a run whose worker died is
failed by the next request or cancel. Cancelled or interrupted runs keep the figures of what they
searched, labelled as such. Searching a run's variants is search.services.relevance_search.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from search.models import AdaptedProjection, RelevanceRun
from search.relevance.figures import Outcome
from search.relevance.variants import KINDS, RECIPE_VERSION, ScenesUnavailable, scenes_load
from shop_search.leases import Lease, LeaseLost, lease_cutoff, lease_owner, lost_lease_reason

from .relevance_results import run_figures
from .relevance_search import ModelChanged, NothingToTest, Progress, relevance_variants_search

logger = logging.getLogger(__name__)

DEFAULT_SEED = 2026  # one default for every run, so runs of different days search the same variants
MAX_PHOTOS = 5000
MAX_SEED = 2**31 - 1


class RelevanceRunRefused(ValueError):
    """A self-test that cannot start: bad options, one already running, unusable scene photos."""


def relevance_options_check(*, photos: int, seed: int, kinds: Sequence[str]) -> tuple[str, ...]:
    """The kinds in their canonical order; RelevanceRunRefused with a message for people otherwise."""
    if not 1 <= photos <= MAX_PHOTOS:
        raise RelevanceRunRefused(f"The number of photos must be between 1 and {MAX_PHOTOS}, not {photos}.")
    if not 0 <= seed <= MAX_SEED:
        raise RelevanceRunRefused(f"The seed must be between 0 and {MAX_SEED}, not {seed}.")
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        raise RelevanceRunRefused(
            f"Unknown variant kind(s) {', '.join(unknown) or '(none given)'}: choose from {', '.join(KINDS)}."
        )
    return tuple(kind for kind in KINDS if kind in kinds)


def relevance_run_request(
    *,
    photos: int | None = None,
    seed: int = DEFAULT_SEED,
    kinds: Sequence[str] = KINDS,
    enqueue: bool = True,
    projection: AdaptedProjection | None = None,
    product_ids: Sequence[int] | None = None,
) -> RelevanceRun:
    """A queued self-test (sent to a worker after commit unless ``enqueue`` is off: the command runs it
    inline). Refused while another one is queued or running.

    With a ``projection`` it is that projection's trial before staff switch to it: only its held-out
    products' photos are sampled, searched with the backbone followed by it (its catalog vectors are
    the stored backbone ones, projected), and when it succeeds the serving model's run on the same
    variants follows unless one exists (search.services.projections.projection_trial_pair).
    ``product_ids`` samples only those products' photos (that follow-up run)."""
    photos = settings.SEARCH_RELEVANCE_PHOTOS if photos is None else photos
    kinds = relevance_options_check(photos=photos, seed=seed, kinds=kinds)
    try:
        scenes_load(settings.SEARCH_RELEVANCE_SCENES_DIR)  # refused now, not minutes later in the worker
    except ScenesUnavailable as exc:
        raise RelevanceRunRefused(str(exc)) from exc
    with transaction.atomic():
        relevance_runs_expire_lost()
        active = RelevanceRun.objects.filter(
            status__in=[RelevanceRun.Status.QUEUED, RelevanceRun.Status.RUNNING]
        )
        if (busy := active.first()) is not None:
            raise RelevanceRunRefused(
                f"Self-test #{busy.pk} is {busy.status}: wait for it to finish or cancel it first."
            )
        run = RelevanceRun.objects.create(
            seed=seed,
            photos_requested=photos,
            kinds=list(kinds),
            recipe_version=RECIPE_VERSION,
            projection=projection,
            product_ids=list(
                projection.held_out_product_ids if projection is not None else product_ids or []
            ),
        )
        if enqueue:
            from search.tasks import relevance_run as relevance_run_task

            relevance_run_task.delay_on_commit(run.pk)
    return run


def relevance_run(*, run_id: int, progress: Progress | None = None) -> RelevanceRun | None:
    """Runs a queued self-test to the end (or until cancelled). None if there is no such run; a run
    that is not queued (already ran, or running elsewhere) is returned unchanged."""
    run = RelevanceRun.objects.filter(pk=run_id).first()
    if run is None:
        return None
    owner = lease_owner()
    if not _claim(run.pk, owner):
        run.refresh_from_db()
        return run
    run.refresh_from_db()
    outcomes: list[Outcome] = []
    thumbnails: dict[tuple[int, str], str] = {}
    try:
        with Lease(RelevanceRun, run.pk, owner=owner, seconds=settings.SEARCH_LEASE_SECONDS) as lease:
            cancelled = relevance_variants_search(run, outcomes, thumbnails, lease, progress)
    except LeaseLost:
        logger.warning("Relevance run %s lost its lease; stopped without recording figures", run.pk)
    except KeyboardInterrupt:  # Ctrl-C in the command: keep what was searched, then stop as asked
        _finish(run, owner, RelevanceRun.Status.CANCELLED, outcomes, thumbnails, error="Interrupted.")
        raise
    except Exception as exc:
        logger.exception("Relevance run %s failed", run.pk)
        _finish(run, owner, RelevanceRun.Status.FAILED, outcomes, thumbnails, error=_describe(exc))
    else:
        status = RelevanceRun.Status.CANCELLED if cancelled else RelevanceRun.Status.SUCCEEDED
        _finish(run, owner, status, outcomes, thumbnails, error="Cancelled." if cancelled else "")
    run.refresh_from_db()
    if run.projection_id and run.status == RelevanceRun.Status.SUCCEEDED:
        _trial_baseline_request(run)
    return run


def _trial_baseline_request(trial: RelevanceRun) -> None:
    """After a projection's trial: the serving model's run on the same variants, unless one exists."""
    same = RelevanceRun.objects.filter(
        projection=None, variant_set=trial.variant_set, status=RelevanceRun.Status.SUCCEEDED
    ).exclude(fingerprint=trial.fingerprint)
    if same.exists():
        return
    try:
        relevance_run_request(
            photos=trial.photos_requested, seed=trial.seed, kinds=trial.kinds, product_ids=trial.product_ids
        )
    except RelevanceRunRefused:
        logger.warning("The current model's run on the variants of trial %s could not be queued", trial.pk)


def relevance_run_cancel(*, run_id: int) -> RelevanceRun | None:
    """A queued run is cancelled at once; a running one stops after the variant it is searching."""
    relevance_runs_expire_lost()
    now = timezone.now()
    queued = RelevanceRun.objects.filter(pk=run_id, status=RelevanceRun.Status.QUEUED)
    queued.update(status=RelevanceRun.Status.CANCELLED, finished_at=now, error="Cancelled before it started.")
    RelevanceRun.objects.filter(pk=run_id, status=RelevanceRun.Status.RUNNING).update(cancel_requested=True)
    return RelevanceRun.objects.filter(pk=run_id).first()


def relevance_runs_expire_lost() -> list[int]:
    """Fails running self-tests whose worker stopped renewing its lease (killed, or cut off)."""
    seconds = settings.SEARCH_LEASE_SECONDS
    lost = RelevanceRun.objects.filter(
        status=RelevanceRun.Status.RUNNING, heartbeat_at__lt=lease_cutoff(seconds)
    )
    expired = []
    for run in lost:
        reason = lost_lease_reason(run.heartbeat_at, seconds)
        still = RelevanceRun.objects.filter(
            pk=run.pk, status=RelevanceRun.Status.RUNNING, heartbeat_at=run.heartbeat_at
        )
        if still.update(status=RelevanceRun.Status.FAILED, finished_at=timezone.now(), error=reason):
            expired.append(run.pk)
    return expired


# --- the run -------------------------------------------------------------------------------------


def _claim(run_id: int, owner: str) -> bool:
    now = timezone.now()
    try:
        with transaction.atomic():
            return bool(
                RelevanceRun.objects.filter(pk=run_id, status=RelevanceRun.Status.QUEUED).update(
                    status=RelevanceRun.Status.RUNNING, started_at=now, heartbeat_at=now, lease_owner=owner
                )
            )
    except IntegrityError:  # relevance_one_running: two requests raced and another run got the CPU
        RelevanceRun.objects.filter(pk=run_id, status=RelevanceRun.Status.QUEUED).update(
            status=RelevanceRun.Status.FAILED,
            finished_at=now,
            error="Another self-test was running; start this one again when it has finished.",
        )
        return False


def _finish(run, owner: str, status: str, outcomes: list[Outcome], thumbnails: dict, *, error: str) -> None:
    """Records the outcome unless the run was taken over meanwhile (its lease ran out)."""
    now = timezone.now()
    fields = {"status": status, "error": error, "finished_at": now, "done": len(outcomes)}
    fields["seconds"] = (now - run.started_at).total_seconds() if run.started_at else None
    if status != RelevanceRun.Status.FAILED and outcomes:
        fields |= run_figures(outcomes, thumbnails)
    mine = RelevanceRun.objects.filter(pk=run.pk, status=RelevanceRun.Status.RUNNING, lease_owner=owner)
    if mine.update(**fields) == 0:
        logger.warning("Relevance run %s was taken over; its outcome (%s) is not recorded", run.pk, status)


def _describe(exc: Exception) -> str:
    message = str(exc) or exc.__class__.__name__
    return (
        message
        if isinstance(exc, ModelChanged | NothingToTest | ScenesUnavailable)
        else f"{exc.__class__.__name__}: {message}"
    )
