"""The admin's bulk import task: progress on the ImportJob, row errors, refused ZIPs, clean-up."""

import io
import zipfile

import pytest
from django.core.files.base import ContentFile

from catalog import tasks
from catalog.models import ImportJob, Product
from catalog.services.moderation import flagged_image_create
from catalog.tasks import import_job_create, import_job_run

pytestmark = pytest.mark.django_db

CSV_HEADER = "sku,name,category,price,description,image\n"


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def make_job(archive: bytes, csv_text: str | None = None) -> ImportJob:
    job = ImportJob.objects.create()
    job.archive.save("photos.zip", ContentFile(archive), save=False)
    if csv_text is not None:
        job.csv_file.save("products.csv", ContentFile(csv_text.encode()), save=False)
    job.save()
    return job


def test_csv_and_zip_import_counts_rows_and_reports_a_non_image_as_a_row_error(photo_bytes, settings):
    archive = zip_bytes(
        {
            "hammer1.webp": photo_bytes("hammer1.webp"),
            "cup.webp": photo_bytes("cup.webp"),
            "notes.jpg": b"this is a text file, not a photo",
        }
    )
    csv_text = CSV_HEADER + (
        "H-1,Claw hammer,Tools > Hammers,12.50,,hammer1.webp\n"
        "C-1,Mug,Kitchen,4.00,,cup.webp\n"
        "N-1,Broken,Kitchen,1.00,,notes.jpg\n"
    )
    job = make_job(archive, csv_text)

    import_job_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == ImportJob.Status.SUCCEEDED
    assert (job.total, job.done, job.created, job.failed) == (3, 3, 2, 1)
    assert [error["row"] for error in job.errors] == [4]
    assert "notes.jpg" in job.errors[0]["reason"]
    assert Product.objects.get(sku="H-1").category.name == "Hammers"
    assert not Product.objects.filter(sku="N-1").exists()
    assert not (settings.CATALOG_IMPORT_DIR / str(job.pk)).exists(), "extracted files are removed"
    uploads = settings.CATALOG_IMPORT_DIR / "uploads"
    assert not job.archive and not list(uploads.rglob("*.zip")), "the ZIP is removed"
    assert job.csv_file.read().decode().startswith("sku,name")


def run_watching_progress(job: ImportJob, monkeypatch, *fields: str) -> list[dict]:
    """Runs the job and returns the job row's ``fields`` as stored after each progress report."""
    seen: list[dict] = []
    real_import = tasks.catalog_import

    def spying_import(**kwargs):
        write = kwargs["progress"]

        def progress(done, total):
            write(done, total)
            seen.append(ImportJob.objects.filter(pk=job.pk).values(*fields).get())

        return real_import(**{**kwargs, "progress": progress})

    monkeypatch.setattr(tasks, "PROGRESS_EVERY_SECONDS", 0)
    monkeypatch.setattr(tasks, "catalog_import", spying_import)
    import_job_run(job_id=job.pk)
    return seen


def test_progress_is_written_to_the_job_while_rows_import(photo_bytes, monkeypatch):
    archive = zip_bytes(
        {f"p{i}.webp": photo_bytes(name) for i, name in enumerate(["cup.webp", "pan.webp", "bulb.webp"])}
    )
    job = make_job(archive)

    seen = run_watching_progress(job, monkeypatch, "status", "done", "total")

    assert [tuple(row.values()) for row in seen] == [("running", 1, 3), ("running", 2, 3), ("running", 3, 3)]
    job.refresh_from_db()
    assert (job.status, job.created, job.failed) == ("succeeded", 3, 0)


def test_failures_show_on_the_job_while_the_import_still_runs(photo_bytes, monkeypatch):
    # Row 2 (in file order) is not a photo: the merchandiser sees it listed before the last row is done.
    archive = zip_bytes(
        {"a.webp": photo_bytes("cup.webp"), "b.jpg": b"not a photo at all", "c.webp": photo_bytes("pan.webp")}
    )
    job = make_job(archive)

    seen = run_watching_progress(job, monkeypatch, "status", "done", "created", "failed", "errors")

    during = seen[1]  # after the second of three rows, the job still running
    assert (during["status"], during["done"], during["created"], during["failed"]) == ("running", 2, 1, 1)
    assert len(during["errors"]) == 1 and "b.jpg" in during["errors"][0]["reason"]


def test_folder_layout_zip_without_csv_makes_categories_from_folders(photo_bytes):
    archive = zip_bytes(
        {
            "shop/tools/claw-hammer.webp": photo_bytes("hammer1.webp"),
            "shop/kitchen/mug.webp": photo_bytes("cup.webp"),
        }
    )
    job = make_job(archive)
    import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.created, job.failed) == ("succeeded", 2, 0)
    hammer = Product.objects.get(name="Claw hammer")
    assert hammer.category.name == "Tools"
    assert hammer.images.count() == 1


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"../evil.jpg": b"x"}, "unsafe path"),
        ({"/tmp/evil.jpg": b"x"}, "unsafe path"),
        ({"bomb.jpg": bytes(30 * 1024 * 1024)}, "zip bomb"),
        ({f"p{i}.jpg": b"x" for i in range(4)}, "4 files; the limit is 3"),
    ],
)
def test_unsafe_zips_fail_the_job_with_a_reason_and_import_nothing(members, message, settings, tmp_path):
    settings.CATALOG_IMPORT_MAX_FILES = 3
    job = make_job(zip_bytes(members))
    import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert message in job.error
    assert job.finished_at is not None
    assert Product.objects.count() == 0
    assert not (tmp_path / "evil.jpg").exists()
    assert not (settings.CATALOG_IMPORT_DIR / str(job.pk)).exists()


def test_a_wrong_csv_header_fails_the_job_with_the_reason(photo_bytes):
    job = make_job(zip_bytes({"cup.webp": photo_bytes("cup.webp")}), "code,title\nC-1,Mug\n")
    import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert "missing column(s)" in job.error


def test_a_flagged_picture_in_the_zip_is_a_row_error_with_the_refusal(photo_bytes):
    flagged_image_create(file=photo_bytes("scissors1.webp"), reason="Copyrighted studio shot")
    archive = zip_bytes(
        {"scissors1.webp": photo_bytes("scissors1.webp"), "cup.webp": photo_bytes("cup.webp")}
    )
    job = make_job(archive, CSV_HEADER + "S-1,Scissors,,3,,scissors1.webp\nC-1,Mug,,4,,cup.webp\n")
    import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.created, job.failed) == ("succeeded", 1, 1)
    assert job.errors[0]["row"] == 2
    assert "not allowed in the shop: Copyrighted studio shot" in job.errors[0]["reason"]


def test_a_job_runs_once_even_if_the_task_is_delivered_twice(photo_bytes):
    job = make_job(zip_bytes({"cup.webp": photo_bytes("cup.webp")}))
    import_job_run(job_id=job.pk)
    ImportJob.objects.filter(pk=job.pk).update(created=99)
    import_job_run(job_id=job.pk)
    assert ImportJob.objects.get(pk=job.pk).created == 99


def test_creating_a_job_enqueues_the_task_after_commit(photo_bytes, django_capture_on_commit_callbacks):
    archive = ContentFile(zip_bytes({"cup.webp": photo_bytes("cup.webp")}), name="photos.zip")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = import_job_create(archive=archive)
        assert ImportJob.objects.get(pk=job.pk).status == "queued"
    assert callbacks[0].func.__self__.name == "catalog.tasks.run_import"
    job.refresh_from_db()
    assert (job.status, job.created) == ("succeeded", 1)  # tasks run eagerly in the test settings


def test_uploaded_import_files_are_private(photo_bytes, settings, django_capture_on_commit_callbacks):
    archive = ContentFile(zip_bytes({"cup.webp": photo_bytes("cup.webp")}), name="photos.zip")
    csv_file = ContentFile((CSV_HEADER + "C-1,Mug,Kitchen,4.00,,cup.webp\n").encode(), name="products.csv")
    with django_capture_on_commit_callbacks(execute=False):
        job = import_job_create(archive=archive, csv_file=csv_file)
    stored = [job.archive.path, job.csv_file.path]
    for path in stored:
        assert path.startswith(str((settings.CATALOG_IMPORT_DIR / "uploads").resolve())), path
        assert not path.startswith(str(settings.MEDIA_ROOT.resolve())), path
    with pytest.raises(ValueError, match="private"):
        job.csv_file.url  # noqa: B018 - the property raises: no URL serves an import file
    assert not settings.MEDIA_ROOT.exists() or not list(settings.MEDIA_ROOT.rglob("*.csv"))


def test_a_polyglot_photo_in_the_zip_fails_its_row(photo_bytes):
    archive = zip_bytes(
        {
            "cup.webp": photo_bytes("cup.webp"),
            "apple.jpg": photo_bytes("apple.jpg") + b"<script>alert(1)</script>",
        }
    )
    csv_text = CSV_HEADER + "C-1,Mug,Kitchen,4.00,,cup.webp\nA-1,Apple,Fruit,1.00,,apple.jpg\n"
    job = make_job(archive, csv_text)
    import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.SUCCEEDED
    assert [(error["row"], "besides a picture" in error["reason"]) for error in job.errors] == [(3, True)]
    assert set(Product.objects.values_list("sku", flat=True)) == {"C-1"}
