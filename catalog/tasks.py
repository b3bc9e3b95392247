"""Catalog background work: the admin's bulk import (CSV + ZIP of photos, or a ZIP with the folder layout).

The task is thin: it loads the ImportJob, safe-extracts the ZIP into CATALOG_IMPORT_DIR/<job id>/,
runs catalog.services.catalog_import with a progress callback that writes to the job row (which the
admin's job page polls), stores the report and removes the extracted files.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from catalog.archives import UnsafeArchive, archive_extract
from catalog.models import ImportJob
from catalog.services import ImportFileError, ImportReport, catalog_import

logger = logging.getLogger(__name__)

# The job page polls about once a second; writing progress more often only adds database load.
PROGRESS_EVERY_SECONDS = 0.5


@transaction.atomic
def import_job_create(*, archive: File, csv_file: File | None = None) -> ImportJob:
    """Store the uploads as a queued job and start the import once the job is committed."""
    job = ImportJob(status=ImportJob.Status.QUEUED)
    job.archive.save(Path(archive.name or "photos.zip").name, archive, save=False)
    if csv_file is not None:
        job.csv_file.save(Path(csv_file.name or "products.csv").name, csv_file, save=False)
    job.save()
    run_import.delay_on_commit(job.pk)
    return job


@shared_task(acks_late=True)
def run_import(job_id: int) -> None:
    import_job_run(job_id=job_id)


def import_job_run(*, job_id: int) -> ImportJob | None:
    """Run a queued import job once; a job already started (task delivered twice) is left alone."""
    if not _claim(job_id):
        return ImportJob.objects.filter(pk=job_id).first()
    job = ImportJob.objects.get(pk=job_id)
    work_dir = Path(settings.CATALOG_IMPORT_DIR) / str(job.pk)
    try:
        report = _import(job, work_dir)
    except (UnsafeArchive, ImportFileError) as exc:
        _finish(job, ImportJob.Status.FAILED, error=str(exc))
    except Exception:
        logger.exception("Import job %s crashed", job.pk)
        _finish(
            job, ImportJob.Status.FAILED, error="The import stopped on an internal error; see the server log."
        )
        raise  # a bug: fail loudly in the worker too
    else:
        _store_report(job, report)
        _finish(job, ImportJob.Status.SUCCEEDED)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
        _archive_delete(job)
    return job


def _archive_delete(job: ImportJob) -> None:
    """The ZIP can be large and its photos are stored now (or refused): keep only the small CSV."""
    if job.archive:
        job.archive.delete(save=False)
        job.save(update_fields=["archive"])


def _claim(job_id: int) -> bool:
    """Move the job from queued to running; False when another delivery of the task got there first."""
    with transaction.atomic():
        claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
            status=ImportJob.Status.RUNNING, started_at=timezone.now()
        )
    return claimed == 1


def _import(job: ImportJob, work_dir: Path) -> ImportReport:
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
        csv_path=csv_path, images_dir=images_dir, progress=_progress_writer(job.pk, report), report=report
    )


def _progress_writer(job_id: int, report: ImportReport):
    last = 0.0

    def write(done: int, total: int) -> None:
        nonlocal last
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


def _finish(job: ImportJob, status: str, *, error: str = "") -> None:
    job.status = status
    job.error = error
    job.finished_at = timezone.now()
    fields = ["status", "error", "finished_at"]
    # A failed job keeps the progress the callback wrote (this instance holds the values from the start).
    job.save(update_fields=fields + (_REPORT_FIELDS if status == ImportJob.Status.SUCCEEDED else []))
