"""A worker SIGKILLed in the middle of an admin import: the job is run again by the next worker, with
no duplicate products, and its extracted files and ZIP are removed — without an operator.

Runs in the Redis + PostgreSQL pass (`make test-postgres`), with a lease of a few seconds.
"""

import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from catalog.models import ImportJob, Product, ProductImage
from catalog.tasks import import_job_create
from tests.real_worker import (
    kill_worker,
    photo_variants,
    start_worker,
    stop_worker,
    wait_for,
    worker_env,
)

LEASE_SECONDS = 3
ROWS = 96


def import_files(photos: list[tuple[str, bytes]]) -> tuple[ContentFile, ContentFile]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in photos:
            archive.writestr(name, data)
    rows = "".join(
        f"SKU-{number},Product {number},Crash test,1.00,,{name}\n" for number, (name, _) in enumerate(photos)
    )
    csv_text = "sku,name,category,price,description,image\n" + rows
    return ContentFile(buffer.getvalue(), name="photos.zip"), ContentFile(
        csv_text.encode(), name="products.csv"
    )


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_import_heals_without_an_operator(settings, tmp_path, real_broker):
    settings.CATALOG_IMPORT_LEASE_SECONDS = LEASE_SECONDS
    env = worker_env(
        settings,
        real_broker,
        tmp_path,
        CATALOG_IMPORT_LEASE_SECONDS=str(LEASE_SECONDS),
        REAP_EVERY_SECONDS="1",
    )
    archive, csv_file = import_files(photo_variants(ROWS))
    job = import_job_create(archive=archive, csv_file=csv_file)  # the admin's upload: run_import queued
    zip_path = Path(job.archive.path)  # in the private import storage, outside MEDIA_ROOT
    job_dir = settings.CATALOG_IMPORT_DIR / str(job.pk)

    first_log, second_log = tmp_path / "worker-1.log", tmp_path / "worker-2.log"
    worker = start_worker(env, first_log)
    try:
        mid_import = ImportJob.objects.filter(pk=job.pk, status="running", done__gte=2)
        wait_for(mid_import.exists, worker, first_log, "the import to get going", every=0.05)
    finally:
        kill_worker(worker)
    job.refresh_from_db()
    assert job.status == "running" and 0 < job.done < ROWS, "killed mid-import"
    imported_before = Product.objects.count()
    assert 0 < imported_before < ROWS and job_dir.exists() and zip_path.exists()  # as the crash left it

    worker = start_worker(env, second_log, beat=True)  # as `run_demo` starts it
    try:
        finished = ImportJob.objects.filter(pk=job.pk, status__in=["succeeded", "failed"])
        wait_for(finished.exists, worker, second_log, "the lost import to be run again")
    finally:
        stop_worker(worker)

    job.refresh_from_db()
    assert (job.status, job.attempts, job.error) == ("succeeded", 2, "")
    assert (job.total, job.failed) == (ROWS, 0)
    assert job.unchanged >= imported_before and job.created + job.unchanged == ROWS  # rows of the lost run
    assert Product.objects.count() == ROWS and ProductImage.objects.count() == ROWS  # no duplicates
    assert not job_dir.exists() and not zip_path.exists() and not job.archive
    assert "lost its worker" in second_log.read_text()
