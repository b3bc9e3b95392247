"""Crash-safe imports: a job whose worker was lost is run again once (no duplicates), then failed;
its extracted files and ZIP are removed. Time is faked by writing heartbeats in the past or passing
``now=``; the real SIGKILL test is test_import_crash.py (Redis + PostgreSQL pass)."""

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from catalog import tasks
from catalog.models import ImportJob, Product
from catalog.services import catalog_import
from catalog.tasks import import_job_run, import_jobs_reap, reap_imports
from shop_search.leases import LOST_LEASE
from tests.catalog.test_import_task import CSV_HEADER, make_job, zip_bytes

LEASE = 3600  # as in the test settings: long, so no heartbeat thread fires in a non-transactional test
ROWS = [("H-1", "hammer1.webp"), ("C-1", "cup.webp"), ("P-1", "pan.webp")]


@pytest.fixture(autouse=True)
def _lease(settings):
    settings.CATALOG_IMPORT_LEASE_SECONDS = LEASE


@pytest.fixture
def three_row_job(photo_bytes):
    archive = zip_bytes({name: photo_bytes(name) for _, name in ROWS})
    csv_text = CSV_HEADER + "".join(f"{sku},{sku} name,Tools,1.00,,{name}\n" for sku, name in ROWS)
    return make_job(archive, csv_text)


def lose(job: ImportJob, *, attempts: int, beat_seconds_ago: float, settings) -> None:
    """The state a SIGKILL leaves: running under a lease nobody renews, extracted files on disk."""
    beat = timezone.now() - timedelta(seconds=beat_seconds_ago)
    ImportJob.objects.filter(pk=job.pk).update(
        status="running", attempts=attempts, lease_owner="gone-host:4242:abc123", heartbeat_at=beat,
        started_at=beat, total=3, done=1,
    )  # fmt: skip
    leftover = settings.CATALOG_IMPORT_DIR / str(job.pk) / f"attempt-{attempts}" / "files"
    leftover.mkdir(parents=True)
    (leftover / "hammer1.webp").write_bytes(b"extracted before the crash")


def import_first_row(photo_path, tmp_path) -> None:
    """What the killed worker had imported: row 1, through the same service."""
    images = tmp_path / "row1"
    images.mkdir()
    (images / "hammer1.webp").write_bytes(photo_path("hammer1.webp").read_bytes())
    (images / "row1.csv").write_text(CSV_HEADER + "H-1,H-1 name,Tools,1.00,,hammer1.webp\n")
    assert catalog_import(csv_path=images / "row1.csv", images_dir=images).created == 1


@pytest.mark.django_db
def test_a_lost_import_is_run_again_once_without_duplicates(
    three_row_job, settings, photo_path, tmp_path, django_capture_on_commit_callbacks
):
    import_first_row(photo_path, tmp_path)
    lose(three_row_job, attempts=1, beat_seconds_ago=LEASE + 1, settings=settings)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert import_jobs_reap() == [three_row_job.pk]

    assert callbacks[0].func.__self__.name == "catalog.tasks.run_import"
    job = ImportJob.objects.get(pk=three_row_job.pk)
    assert (job.status, job.attempts, job.error) == ("succeeded", 2, "")
    assert (job.total, job.done, job.created, job.unchanged, job.failed) == (3, 3, 2, 1, 0)
    assert Product.objects.count() == 3 and Product.objects.get(sku="H-1").images.count() == 1
    assert not (settings.CATALOG_IMPORT_DIR / str(job.pk)).exists()
    assert not job.archive and job.csv_file


@pytest.mark.django_db
def test_an_import_lost_twice_fails_with_the_reason_and_its_files_are_removed(
    three_row_job, settings, django_capture_on_commit_callbacks
):
    lose(three_row_job, attempts=2, beat_seconds_ago=LEASE + 1, settings=settings)
    archive = Path(three_row_job.archive.path)  # in the private import storage
    assert archive.exists()

    with django_capture_on_commit_callbacks() as callbacks:
        reap_imports()  # the beat task

    job = ImportJob.objects.get(pk=three_row_job.pk)
    assert job.status == "failed" and job.finished_at is not None and callbacks == []
    assert job.error.startswith(f"{LOST_LEASE}: no heartbeat since ")
    assert "stopped at row 1 of 3" in job.error and "lost again" in job.error
    assert not (settings.CATALOG_IMPORT_DIR / str(job.pk)).exists()
    assert not archive.exists() and not job.archive
    assert job.csv_file  # the small CSV is kept, as for any finished job


@pytest.mark.django_db
def test_an_import_lease_is_lost_only_once_its_time_has_passed(three_row_job, settings):
    lose(three_row_job, attempts=1, beat_seconds_ago=0, settings=settings)
    beat = ImportJob.objects.get(pk=three_row_job.pk).heartbeat_at

    assert import_jobs_reap(now=beat + timedelta(seconds=LEASE - 1)) == []
    assert ImportJob.objects.get(pk=three_row_job.pk).status == "running"
    assert (settings.CATALOG_IMPORT_DIR / str(three_row_job.pk) / "attempt-1").exists()

    assert import_jobs_reap(now=beat + timedelta(seconds=LEASE + 1)) == [three_row_job.pk]
    assert ImportJob.objects.get(pk=three_row_job.pk).status == "queued"
    assert not (settings.CATALOG_IMPORT_DIR / str(three_row_job.pk) / "attempt-1").exists()


@pytest.mark.django_db
def test_a_queued_import_with_no_task_behind_it_is_sent_again(
    three_row_job, django_capture_on_commit_callbacks
):
    sent = timezone.now() - timedelta(seconds=LEASE + 1)
    ImportJob.objects.filter(pk=three_row_job.pk).update(enqueued_at=sent)

    with django_capture_on_commit_callbacks() as callbacks:
        assert import_jobs_reap() == [three_row_job.pk]
    assert [callback.args for callback in callbacks] == [(three_row_job.pk,)]

    with django_capture_on_commit_callbacks() as callbacks:
        assert import_jobs_reap() == []  # just sent again: not at every reap
    assert callbacks == []


@pytest.mark.django_db
def test_a_redelivered_import_task_takes_over_a_lost_run(three_row_job, settings):
    lose(three_row_job, attempts=1, beat_seconds_ago=10, settings=settings)
    assert import_job_run(job_id=three_row_job.pk).status == "running"  # lease still fresh: left alone
    assert Product.objects.count() == 0

    ImportJob.objects.filter(pk=three_row_job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    job = import_job_run(job_id=three_row_job.pk)

    assert (job.status, job.attempts, job.created) == ("succeeded", 2, 3)
    assert not (settings.CATALOG_IMPORT_DIR / str(job.pk)).exists()


@pytest.mark.django_db
def test_a_redelivered_task_of_an_import_lost_twice_fails_it_and_removes_its_files(three_row_job, settings):
    lose(three_row_job, attempts=2, beat_seconds_ago=LEASE + 1, settings=settings)

    job = import_job_run(job_id=three_row_job.pk)

    assert job.status == "failed" and job.error.startswith(LOST_LEASE) and Product.objects.count() == 0
    assert not (settings.CATALOG_IMPORT_DIR / str(job.pk)).exists() and not job.archive


@pytest.mark.django_db
def test_leftover_folders_of_finished_or_deleted_jobs_are_removed(three_row_job, settings, photo_bytes):
    root = settings.CATALOG_IMPORT_DIR
    done = make_job(zip_bytes({"cup.webp": photo_bytes("cup.webp")}))
    ImportJob.objects.filter(pk=done.pk).update(status="succeeded")
    for name in (str(done.pk), "999999", str(three_row_job.pk), "not-a-job"):
        (root / name / "attempt-1").mkdir(parents=True)

    import_jobs_reap()

    # "uploads" is the private storage of uploaded import files, not a job's folder.
    expected = [str(three_row_job.pk), "not-a-job", "uploads"]
    assert sorted(path.name for path in root.iterdir()) == sorted(expected)
    assert not ImportJob.objects.get(pk=done.pk).archive  # a finished job's ZIP is not kept
    assert ImportJob.objects.get(pk=three_row_job.pk).archive  # the queued job still needs its ZIP


@pytest.mark.django_db(transaction=True)
def test_an_import_taken_over_while_it_runs_stops_without_recording_an_outcome(
    three_row_job, settings, monkeypatch
):
    settings.CATALOG_IMPORT_LEASE_SECONDS = 1  # renewals every 0.25 s
    real_import = tasks.catalog_import

    def import_while_presumed_dead(**kwargs):
        write = kwargs["progress"]

        def progress(done, total):
            if done == 1:  # the reaper ran it again elsewhere (this worker was cut off for a lease)
                ImportJob.objects.filter(pk=three_row_job.pk).update(lease_owner="new-owner")
                time.sleep(0.8)  # the next renewal finds out
            write(done, total)

        return real_import(**{**kwargs, "progress": progress})

    monkeypatch.setattr(tasks, "catalog_import", import_while_presumed_dead)
    job = import_job_run(job_id=three_row_job.pk)

    assert (job.status, job.lease_owner, job.finished_at) == ("running", "new-owner", None)
    assert Product.objects.count() == 1  # stopped after the row it was importing
    assert job.archive  # the run that took over needs the ZIP
    assert not (settings.CATALOG_IMPORT_DIR / str(job.pk) / "attempt-1").exists()
