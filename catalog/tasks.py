"""Catalog background work: the admin's bulk import (CSV + ZIP of photos, or a ZIP with the folder layout).

The task is thin: it loads the ImportJob, safe-extracts the ZIP into CATALOG_IMPORT_DIR/<job id>/,
runs catalog.services.catalog_import with a progress callback that writes to the job row (which the
admin's job page polls), stores the report and removes the extracted files.

Crash safety (shop_search.leases): the worker running a job holds a lease it renews every
CATALOG_IMPORT_LEASE_SECONDS/4. A job whose lease ran out was lost (worker killed mid-import): the
reaper (``import_jobs_reap``, the ``catalog.reap_imports`` beat task) removes its extracted files and
runs it again once — importing is idempotent by SKU and photo content, so rows already imported come
out unchanged — and fails it with the reason if it is lost again, deleting its ZIP. A redelivered
``run_import`` finding its job "running" under a lapsed lease does the same and takes the job over.
"""

from __future__ import annotations

import logging
import shutil
import time
from datetime import datetime
from pathlib import Path

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from catalog.archives import UnsafeArchive, archive_extract
from catalog.models import ImportJob
from catalog.services import ImportFileError, ImportReport, catalog_import
from shop_search.leases import Lease, LeaseLost, lease_cutoff, lease_owner, lost_lease_reason

logger = logging.getLogger(__name__)

# The job page polls about once a second; writing progress more often only adds database load.
PROGRESS_EVERY_SECONDS = 0.5
# A job lost this many times is failed instead of being run again (a ZIP that kills the worker).
MAX_ATTEMPTS = 2
_FINISHED = (ImportJob.Status.SUCCEEDED, ImportJob.Status.FAILED)


@transaction.atomic
def import_job_create(*, archive: File, csv_file: File | None = None) -> ImportJob:
    """Store the uploads as a queued job and start the import once the job is committed."""
    job = ImportJob(status=ImportJob.Status.QUEUED, enqueued_at=timezone.now())
    job.archive.save(Path(archive.name or "photos.zip").name, archive, save=False)
    if csv_file is not None:
        job.csv_file.save(Path(csv_file.name or "products.csv").name, csv_file, save=False)
    job.save()
    run_import.delay_on_commit(job.pk)
    return job


# Idempotent: a task whose pool process died is sent again (as a counted retry, never forever).
@shared_task(acks_late=True, reject_on_worker_lost=True, retry_on_worker_lost=True, max_retries=2)
def run_import(job_id: int) -> None:
    import_job_run(job_id=job_id)


@shared_task(name="catalog.reap_imports")
def reap_imports() -> str:
    """Periodic (Celery beat, REAP_EVERY_SECONDS): lost import jobs are run again or failed, their
    files removed; queued jobs whose task was lost are sent again."""
    return f"import jobs handled: {import_jobs_reap()}"


@worker_ready.connect
def _reap_imports_when_a_worker_starts(sender=None, **kwargs) -> None:
    reap_imports.delay()  # a worker restarted after a crash resumes lost imports without waiting for beat


def import_job_run(*, job_id: int) -> ImportJob | None:
    """Run a queued import job once; a job already started (task delivered twice) is left alone."""
    _reap_lost(ImportJob.objects.filter(pk=job_id), timezone.now(), enqueue=False)  # take over a lost run
    owner = lease_owner()
    if not _claim(job_id, owner):
        return ImportJob.objects.filter(pk=job_id).first()
    job = ImportJob.objects.get(pk=job_id)
    work_dir = _attempt_dir(job)  # never shared with a run that takes over
    held = True
    try:
        with Lease(ImportJob, job.pk, owner=owner, seconds=settings.CATALOG_IMPORT_LEASE_SECONDS) as lease:
            report = _import(job, work_dir, lease)
    except LeaseLost:
        held = False
        logger.warning("Import job %s lost its lease; stopped, the job was taken over", job.pk)
    except (UnsafeArchive, ImportFileError) as exc:
        held = _finish(job, owner, ImportJob.Status.FAILED, error=str(exc))
    except Exception:
        logger.exception("Import job %s crashed", job.pk)
        error = "The import stopped on an internal error; see the server log."
        held = _finish(job, owner, ImportJob.Status.FAILED, error=error)
        raise  # a bug: fail loudly in the worker too
    else:
        _store_report(job, report)
        held = _finish(job, owner, ImportJob.Status.SUCCEEDED)
    finally:
        if held:
            _remove_files(job)
        else:  # the run that took over owns the job's folder and its ZIP now
            shutil.rmtree(work_dir, ignore_errors=True)
    job.refresh_from_db()
    return job


def import_jobs_reap(*, now: datetime | None = None) -> list[int]:
    """Runs again (once) or fails import jobs whose worker was lost, re-sends queued jobs whose task
    was lost, and removes files no job needs any more. Returns the ids of the jobs it acted on."""
    now = now or timezone.now()
    cutoff = lease_cutoff(settings.CATALOG_IMPORT_LEASE_SECONDS, now)
    handled = _reap_lost(ImportJob.objects.all(), now, enqueue=True)
    orphaned = ImportJob.objects.filter(status=ImportJob.Status.QUEUED).annotate(
        sent=Coalesce("enqueued_at", "created_at")
    )
    for job_id in orphaned.filter(sent__lt=cutoff).values_list("pk", flat=True):
        logger.warning("Import job %s was queued with no task behind it; enqueued again", job_id)
        _enqueue(job_id, now)
        handled.append(job_id)
    _remove_leftovers()
    return handled


def _reap_lost(jobs, now: datetime, *, enqueue: bool) -> list[int]:
    cutoff = lease_cutoff(settings.CATALOG_IMPORT_LEASE_SECONDS, now)
    lost = jobs.filter(status=ImportJob.Status.RUNNING).annotate(
        beat=Coalesce("heartbeat_at", "started_at", "created_at")
    )
    handled = []
    for job in lost.filter(beat__lt=cutoff):
        if _requeue_or_fail(job, now):
            handled.append(job.pk)
            if enqueue:
                _enqueue(job.pk, now)
    return handled


def _requeue_or_fail(job: ImportJob, now: datetime) -> bool:
    """True when the lost job was queued again (False: failed, or someone else got there first)."""
    reason = lost_lease_reason(job.beat, settings.CATALOG_IMPORT_LEASE_SECONDS)
    at = f"It stopped at row {job.done} of {job.total}."
    # Only one of the reapers and redelivered tasks that see the lost run gets to act on it.
    running = _held_by(job.pk, job.lease_owner)
    if job.attempts < MAX_ATTEMPTS:
        fresh = {name: 0 for name in ("total", "done", "created", "unchanged", "failed")}
        if running.update(status=ImportJob.Status.QUEUED, lease_owner="", errors=[], **fresh) == 0:
            return False
        logger.warning("Import job %s lost its worker (%s); running it again. %s", job.pk, reason, at)
        shutil.rmtree(_attempt_dir(job), ignore_errors=True)  # the lost run's extracted files
        return True
    error = (
        f"{reason} {at} It was run again and lost again, so it was stopped. Products imported "
        "before that are kept: upload the same files again to finish (they come out unchanged)."
    )
    if running.update(status=ImportJob.Status.FAILED, error=error, finished_at=now) == 1:
        logger.warning("Import job %s lost its worker again; failed", job.pk)
        _remove_files(job)
    return False


def _remove_leftovers() -> None:
    """Extracted folders of jobs that are finished or gone, and ZIPs of finished jobs (e.g. from a
    crash before this clean-up existed)."""
    root = Path(settings.CATALOG_IMPORT_DIR)
    folders = {int(path.name): path for path in root.glob("*") if path.is_dir() and path.name.isdigit()}
    active = set(
        ImportJob.objects.filter(pk__in=list(folders))
        .exclude(status__in=_FINISHED)
        .values_list("pk", flat=True)
    )
    for job_id, path in folders.items():
        if job_id not in active:
            shutil.rmtree(path, ignore_errors=True)
    for job in ImportJob.objects.filter(status__in=_FINISHED).exclude(archive=""):
        _archive_delete(job)


def _enqueue(job_id: int, now: datetime) -> None:
    ImportJob.objects.filter(pk=job_id).update(enqueued_at=now)
    run_import.delay_on_commit(job_id)


def _job_dir(job_id: int) -> Path:
    return Path(settings.CATALOG_IMPORT_DIR) / str(job_id)


def _attempt_dir(job: ImportJob) -> Path:
    return _job_dir(job.pk) / f"attempt-{job.attempts}"


def _remove_files(job: ImportJob) -> None:
    shutil.rmtree(_job_dir(job.pk), ignore_errors=True)
    _archive_delete(job)


def _archive_delete(job: ImportJob) -> None:
    """The ZIP can be large and its photos are stored now (or refused): keep only the small CSV."""
    if job.archive:
        job.archive.delete(save=False)
        ImportJob.objects.filter(pk=job.pk).update(archive="")


def _claim(job_id: int, owner: str) -> bool:
    """Move the job from queued to running; False when another delivery of the task got there first."""
    now = timezone.now()
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING,
        started_at=Coalesce("started_at", now),  # the first attempt's start
        heartbeat_at=now,
        lease_owner=owner,
        attempts=F("attempts") + 1,
    )
    return claimed == 1


def _import(job: ImportJob, work_dir: Path, lease: Lease) -> ImportReport:
    if work_dir.exists():  # left over from a killed worker: start clean
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    with job.archive.open("rb") as archive:
        extracted = archive_extract(archive, work_dir / "files")
    csv_path = None
    if job.csv_file:
        csv_path = work_dir / "products.csv"
        with job.csv_file.open("rb") as source, csv_path.open("wb") as target:
            shutil.copyfileobj(source, target)
    # A CSV names paths inside the ZIP; without one, the folder tree is the catalog.
    images_dir = extracted.target if csv_path is not None else extracted.root
    report = ImportReport()  # filled row by row: the job page shows counts and failures live
    return catalog_import(
        csv_path=csv_path,
        images_dir=images_dir,
        progress=_progress_writer(job.pk, report, lease),
        report=report,
    )


def _progress_writer(job_id: int, report: ImportReport, lease: Lease):
    last = 0.0

    def write(done: int, total: int) -> None:
        nonlocal last
        lease.check()  # stop after this row if the job was taken over
        now = time.monotonic()
        if done < total and now - last < PROGRESS_EVERY_SECONDS:
            return
        last = now
        ImportJob.objects.filter(pk=job_id).update(done=done, **_report_counts(report))

    return write


def _report_counts(report: ImportReport) -> dict:
    errors = [{"row": error.row, "reason": error.reason} for error in report.errors]
    errors += [{"row": w.row, "reason": w.reason, "warning": True} for w in report.warnings]
    return {
        "total": report.total,
        "created": report.created,
        "unchanged": report.unchanged,
        "failed": report.failed,
        "errors": errors,
    }


def _store_report(job: ImportJob, report: ImportReport) -> None:
    for name, value in _report_counts(report).items():
        setattr(job, name, value)
    job.done = report.total


_REPORT_FIELDS = ["total", "done", "created", "unchanged", "failed", "errors"]


def _finish(job: ImportJob, owner: str, status: str, *, error: str = "") -> bool:
    """Records the outcome unless the job was taken over meanwhile (False then)."""
    values = {"status": status, "error": error, "finished_at": timezone.now()}
    if status == ImportJob.Status.SUCCEEDED:
        # A failed job keeps the progress the callback wrote (this instance holds the values from the start).
        values.update({name: getattr(job, name) for name in _REPORT_FIELDS})
    return _held_by(job.pk, owner).update(**values) == 1


def _held_by(job_id: int, owner: str):
    return ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.RUNNING, lease_owner=owner)
