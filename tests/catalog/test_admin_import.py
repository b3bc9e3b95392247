"""Bulk import from the admin: upload form, job page, polled JSON, refusals shown to the merchandiser."""

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from catalog.models import ImportJob, Product
from catalog.services.moderation import flagged_image_create

pytestmark = pytest.mark.django_db
IMPORT_URL = reverse("admin:catalog_product_import")
CSV_HEADER = "sku,name,category,price,description,image\n"


def zip_upload(members: dict[str, bytes], name: str = "photos.zip") -> SimpleUploadedFile:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return SimpleUploadedFile(name, buf.getvalue(), content_type="application/zip")


def csv_upload(text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("products.csv", text.encode(), content_type="text/csv")


def post_import(admin_client, capture, **files):
    """Post the form, let the task run (after commit, eagerly in tests), then open the job page."""
    with capture(execute=True):
        posted = admin_client.post(IMPORT_URL, files)
    assert posted.status_code == 302, posted.content.decode()
    return admin_client.get(posted["Location"], follow=True)


def test_product_list_links_to_the_import_page(admin_client):
    html = admin_client.get(reverse("admin:catalog_product_changelist")).content.decode()
    assert f'href="{IMPORT_URL}"' in html
    assert admin_client.get(IMPORT_URL).status_code == 200


def test_csv_and_zip_upload_runs_the_job_and_shows_rows_and_failures(
    admin_client, photo_bytes, django_capture_on_commit_callbacks
):
    archive = zip_upload(
        {
            "hammer1.webp": photo_bytes("hammer1.webp"),
            "cup.webp": photo_bytes("cup.webp"),
            "readme.jpg": b"text",
        }
    )
    csv_file = csv_upload(
        CSV_HEADER
        + "H-1,Claw hammer,Tools,12.50,,hammer1.webp\n"
        + "C-1,Mug,Kitchen,4,,cup.webp\n"
        + "R-1,Bad,Kitchen,1,,readme.jpg\n"
    )
    response = post_import(
        admin_client, django_capture_on_commit_callbacks, archive=archive, csv_file=csv_file
    )

    job = ImportJob.objects.get()
    assert response.request["PATH_INFO"] == reverse("admin:catalog_importjob_page", args=[job.pk])
    html = response.content.decode()
    assert f"Import #{job.pk} queued." in html
    assert '<td id="job-status" data-field="status">succeeded</td>' in html
    assert '<td id="job-created">2</td>' in html and '<td id="job-failed" data-field="failed">1</td>' in html
    errors = html.split('id="job-errors"')[1]
    assert "<td>4</td>" in errors and "readme.jpg" in errors
    assert set(Product.objects.values_list("sku", flat=True)) == {"H-1", "C-1"}


def test_status_endpoint_reports_progress_as_json(admin_client, client, photo_bytes):
    job = ImportJob.objects.create(status="running", total=40, done=10)
    url = reverse("admin:catalog_importjob_status", args=[job.pk])
    data = admin_client.get(url).json()
    assert (data["status"], data["done"], data["total"], data["percent"], data["finished"]) == (
        "running",
        10,
        40,
        25,
        False,
    )
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]


def test_running_job_page_polls_and_finished_page_does_not(admin_client):
    running = ImportJob.objects.create(status="running", total=4, done=1)
    html = admin_client.get(reverse("admin:catalog_importjob_page", args=[running.pk])).content.decode()
    assert f'data-poll-url="{reverse("admin:catalog_importjob_status", args=[running.pk])}"' in html
    assert "admin_extra/poll.js" in html
    done = ImportJob.objects.create(status="succeeded", total=4, done=4, created=4)
    html = admin_client.get(reverse("admin:catalog_importjob_page", args=[done.pk])).content.decode()
    assert "data-poll-url" not in html


def test_folder_zip_without_csv_imports_categories(
    admin_client, photo_bytes, django_capture_on_commit_callbacks
):
    archive = zip_upload({"tools/claw-hammer.webp": photo_bytes("hammer1.webp")})
    post_import(admin_client, django_capture_on_commit_callbacks, archive=archive)
    assert Product.objects.get().category.name == "Tools"


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"../evil.jpg": b"x"}, "unsafe path"),
        ({"/etc/evil.jpg": b"x"}, "unsafe path"),
        ({"bomb.jpg": bytes(20 * 1024 * 1024)}, "zip bomb"),
    ],
)
def test_unsafe_zip_is_refused_on_the_form(admin_client, members, message):
    response = admin_client.post(IMPORT_URL, {"archive": zip_upload(members)})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ImportJob.objects.exists()


def test_too_many_files_are_refused_on_the_form(admin_client, settings):
    settings.CATALOG_IMPORT_MAX_FILES = 2
    response = admin_client.post(IMPORT_URL, {"archive": zip_upload({f"{i}.jpg": b"x" for i in range(3)})})
    assert "3 files; the limit is 2" in response.content.decode()


def test_not_a_zip_is_refused_on_the_form(admin_client):
    response = admin_client.post(IMPORT_URL, {"archive": SimpleUploadedFile("photos.zip", b"not a zip")})
    assert "not a readable ZIP" in response.content.decode()


def test_flagged_picture_in_an_admin_import_is_shown_as_a_row_error(
    admin_client, photo_bytes, django_capture_on_commit_callbacks
):
    flagged_image_create(file=photo_bytes("scissors1.webp"), reason="Copyrighted studio shot")
    archive = zip_upload({"s.webp": photo_bytes("scissors1.webp"), "c.webp": photo_bytes("cup.webp")})
    csv_file = csv_upload(CSV_HEADER + "S-1,Scissors,,3,,s.webp\nC-1,Mug,,4,,c.webp\n")
    response = post_import(
        admin_client, django_capture_on_commit_callbacks, archive=archive, csv_file=csv_file
    )
    errors = response.content.decode().split('id="job-errors"')[1]
    assert "<td>2</td>" in errors
    assert "not allowed in the shop: Copyrighted studio shot" in errors
    assert list(Product.objects.values_list("sku", flat=True)) == ["C-1"]


def test_a_job_failing_as_a_whole_shows_the_reason(
    admin_client, photo_bytes, django_capture_on_commit_callbacks
):
    archive = zip_upload({"c.webp": photo_bytes("cup.webp")})
    response = post_import(
        admin_client,
        django_capture_on_commit_callbacks,
        archive=archive,
        csv_file=csv_upload("code,title\n1,x\n"),
    )
    html = response.content.decode()
    assert 'id="job-error"' in html and "missing column(s)" in html


def test_staff_without_permissions_cannot_import_or_rebuild(client, django_user_model):
    staff = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get(IMPORT_URL).status_code == 403
    assert client.post(reverse("admin:search_dashboard_rebuild")).status_code == 403
    assert client.get(reverse("admin:search_dashboard")).status_code == 403
