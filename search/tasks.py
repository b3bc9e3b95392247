"""Celery tasks: thin, take ids, call one service. Only errors that can heal are retried.

A photo that cannot be decoded is not an error here: the service marks its embedding failed with
the reason and returns. Storage I/O, database connection and broker errors are retried with backoff.
All tasks are idempotent (settled embeddings are skipped, a build runs only from "queued"), so a
task redelivered after a worker crash does no harm: they are acknowledged after they ran (acks_late),
and a task whose pool process died is sent again (reject_on_worker_lost), counted as a retry
(retry_on_worker_lost) so that a photo or build that kills its process is not redelivered forever.
A redelivered index_build_run task finds its build "running": once that build's lease ran out it is failed and
the next build enqueued (search.services.builds); before that the task does nothing and ``reap``
(run by Celery beat) finishes the job.
"""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError

from search import services

TRANSIENT_ERRORS = (OSError, OperationalError, InterfaceError, BrokerError)
RETRY_OPTIONS = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": True,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 5,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "retry_on_worker_lost": True,
}


@shared_task(name="search.embed_image", **RETRY_OPTIONS)
def embed_image(image_id: int) -> str:
    embedding = services.image_embed(image_id=image_id)
    return embedding.status if embedding is not None else "gone"


@shared_task(name="search.embed_images", **RETRY_OPTIONS)
def embed_images(image_ids: list[int]) -> dict[str, int]:
    summary = services.images_embed(image_ids=image_ids)
    return {"embedded": summary.embedded, "failed": summary.failed, "skipped": summary.skipped}


@shared_task(name="search.index_build_run", **RETRY_OPTIONS)
def index_build_run(build_id: int) -> str:
    build = services.index_build_run(build_id=build_id)
    return build.status if build is not None else "gone"


@shared_task(name="search.index_check", **RETRY_OPTIONS)
def index_check() -> str:
    """Requests a build when the model changed or many photos wait outside the index."""
    build = services.index_build_schedule_if_stale()
    return f"build {build.pk} requested" if build is not None else "up to date"


@shared_task(name="search.reap")
def reap() -> str:
    """Periodic (Celery beat, REAP_EVERY_SECONDS): fails builds whose worker was lost, lets the next
    one run, and re-sends a queued build whose task was lost."""
    reaped = services.index_builds_reap()
    return f"lost builds {reaped.expired}, enqueued {reaped.enqueued}"


@shared_task(name="search.fold_in")
def fold_in() -> str:
    """Periodic (Celery beat, REAP_EVERY_SECONDS): requests a build once a photo has been searchable
    outside the index for longer than SEARCH_FOLD_IN_AFTER_SECONDS (search.services.build_queue)."""
    build = services.index_fold_in_if_due()
    return f"build {build.pk} requested" if build is not None else "nothing waits long enough"


@shared_task(name="search.sync_vectors", **RETRY_OPTIONS)
def sync_vectors() -> str:
    """The writer of single-writer stores (hnsw): applies what changed in the database since its last
    sync (search.services.vector_sync); also periodic (Celery beat, REAP_EVERY_SECONDS)."""
    return services.vector_stores_sync()


@worker_ready.connect
def _check_index_when_a_worker_starts(sender=None, **kwargs) -> None:
    # After a model switch (new SEARCH_BACKBONE or weights, then a worker restart) the catalog is
    # re-embedded in the background while the old model's vectors keep answering. Queued as a task
    # so the model loads in a pool process, never in the parent before it forks.
    index_check.delay()
    reap.delay()  # a worker restarted after a crash heals at once if the old lease already ran out


@shared_task(name="search.flagged_images_embed", **RETRY_OPTIONS)
def flagged_images_embed() -> int:
    """Embeds newly flagged pictures, so re-shot copies of them are refused too."""
    from search.services.moderation import flagged_image_vectors_refresh

    return flagged_image_vectors_refresh()


@shared_task(name="search.relevance_run", **RETRY_OPTIONS)
def relevance_run(run_id: int) -> str:
    """The relevance self-test (search.services.relevance); a redelivered task finds it running and stops."""
    run = services.relevance_run(run_id=run_id)
    return run.status if run is not None else "gone"
