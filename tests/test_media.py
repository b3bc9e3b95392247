"""Uploaded media served by Django (shop_search.media): what anyone, staff and a path trick can read."""

from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import resolve
from django.utils.http import http_date

from shop_search.media import media_urlpatterns


@pytest.fixture
def media_files(settings) -> dict[str, bytes]:
    files = {
        "products/ab/abcd.jpg": b"\xff\xd8 product photo",
        "thumbs/320/abcd.jpg": b"\xff\xd8 thumbnail",
        "queries/2026-12-01/shopper.jpg": b"\xff\xd8 a shopper's query photo",
        "imports/catalog.csv": b"sku,name\n",
        "products/.hidden.jpg": b"hidden",
    }
    for name, content in files.items():
        default_storage.save(name, ContentFile(content))
    Path(settings.MEDIA_ROOT).parent.joinpath("outside.txt").write_bytes(b"outside the media folder")
    return files


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["products/ab/abcd.jpg", "thumbs/320/abcd.jpg"])
def test_anyone_gets_product_photos_and_thumbnails_with_cache_headers(client, media_files, name):
    response = client.get(f"/media/{name}")

    assert response.status_code == 200
    assert body(response) == media_files[name]
    assert response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"] == "public, max-age=604800"
    assert response["Last-Modified"]
    assert "sandbox" in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_an_unchanged_photo_is_a_304(client, media_files):
    first = client.get("/media/products/ab/abcd.jpg")

    again = client.get("/media/products/ab/abcd.jpg", HTTP_IF_MODIFIED_SINCE=first["Last-Modified"])
    older = client.get("/media/products/ab/abcd.jpg", HTTP_IF_MODIFIED_SINCE=http_date(0))

    assert again.status_code == 304
    assert older.status_code == 200 and body(older) == media_files["products/ab/abcd.jpg"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["queries/2026-12-01/shopper.jpg", "imports/catalog.csv"])
def test_private_folders_are_a_404_for_shoppers_and_served_to_staff(client, admin_user, media_files, name):
    anonymous = client.get(f"/media/{name}")
    client.force_login(admin_user)
    staff = client.get(f"/media/{name}")

    assert anonymous.status_code == 404
    assert staff.status_code == 200 and body(staff) == media_files[name]
    assert staff["Cache-Control"] == "private, no-store"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/media/../outside.txt",
        "/media/products/../../outside.txt",
        "/media/products/..%2F..%2Foutside.txt",
        "/media/%2E%2E/outside.txt",
        "/media/products//ab/abcd.jpg",
        "/media/products/./ab/abcd.jpg",
        "/media/products/.hidden.jpg",
        "/media/products\\ab\\abcd.jpg",
        "/media/products/ab/abcd.jpg%00.png",
        "/media/products/ab",  # a folder
        "/media/products/ab/missing.jpg",
    ],
)
def test_paths_that_are_not_a_plain_file_name_are_a_404(client, media_files, path):
    response = client.get(path)

    assert response.status_code == 404
    assert b"outside the media folder" not in response.content


@pytest.mark.django_db
def test_media_is_read_only(client, media_files):
    assert client.post("/media/products/ab/abcd.jpg").status_code == 405
    assert client.head("/media/products/ab/abcd.jpg").status_code == 200


def test_media_is_mounted_only_when_serve_media_is_on_and_media_url_is_local(settings):
    assert resolve("/media/products/ab/abcd.jpg").url_name == "media"
    assert [p.name for p in media_urlpatterns()] == ["media"]

    settings.SERVE_MEDIA = False
    assert media_urlpatterns() == []

    settings.SERVE_MEDIA = True
    settings.MEDIA_URL = "https://cdn.example.com/media/"
    assert media_urlpatterns() == []
