"""Near-duplicate page and flagged pictures in the admin, with real photos."""

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from catalog.models import FlaggedImage
from catalog.services import product_create, product_image_create

pytestmark = pytest.mark.django_db
DUPLICATES_URL = reverse("admin:catalog_product_duplicates")


def resized(data: bytes, factor: float) -> bytes:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image = image.resize((int(image.width * factor), int(image.height * factor)), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def recompressed(data: bytes, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def add(sku: str, data: bytes) -> None:
    product = product_create(sku=sku, name=sku, price="1.00", currency="EUR", category=None)
    product_image_create(product=product, file=data, original_name=f"{sku}.img")


def group_skus(html: str) -> list[set[str]]:
    groups = html.split('class="admin-extra-panel admin-extra-group duplicate-group"')[1:]
    return [set(re.findall(r'<span class="sku">([^<]+)</span>', group)) for group in groups]


def test_duplicates_page_groups_copies_of_one_photo_and_nothing_else(admin_client, photo_bytes):
    hammer = photo_bytes("hammer1.webp")
    add("ORIG", hammer)
    add("RESIZED", resized(hammer, 0.6))
    add("JPEG", recompressed(hammer, 40))
    for name in ["hammer2.webp", "scissors1.webp", "cup.webp", "chair.webp", "apple.jpg"]:
        add(name.split(".")[0].upper(), photo_bytes(name))

    html = admin_client.get(DUPLICATES_URL).content.decode()

    assert group_skus(html) == [{"ORIG", "RESIZED", "JPEG"}]
    assert "/media/thumbs/160/" in html
    assert "found by same picture (perceptual hash)" in html  # how the group was found


def test_duplicates_page_says_when_there_are_none(admin_client, photo_bytes):
    add("CUP", photo_bytes("cup.webp"))
    add("PAN", photo_bytes("pan.webp"))
    html = admin_client.get(DUPLICATES_URL).content.decode()
    assert 'id="no-duplicates"' in html


def test_flagging_a_picture_in_the_admin_stores_hashes_and_vector(
    admin_client, photo_bytes, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile("scissors.webp", photo_bytes("scissors1.webp"))
    # The vector is computed by search's task once the flag is committed (never inside the request's
    # transaction); tasks run inline in tests.
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:catalog_flaggedimage_add"),
            {"upload": upload, "reason": "Copyrighted"},
            follow=True,
        )
    assert response.status_code == 200
    flagged = FlaggedImage.objects.get()
    assert flagged.reason == "Copyrighted"
    assert len(flagged.sha256) == 64 and flagged.phash and flagged.vector
    listing = admin_client.get(reverse("admin:catalog_flaggedimage_changelist")).content.decode()
    assert "/media/thumbs/128/" in listing and "hash + embedding" in listing


def test_flagging_something_that_is_not_a_picture_is_a_form_error(admin_client):
    upload = SimpleUploadedFile("notes.jpg", b"plain text")
    response = admin_client.post(reverse("admin:catalog_flaggedimage_add"), {"upload": upload, "reason": "x"})
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert not FlaggedImage.objects.exists()


def test_admin_index_links_to_the_tools(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    for name in (
        "admin:search_dashboard",
        "admin:catalog_product_import",
        "admin:catalog_product_duplicates",
    ):
        assert f'href="{reverse(name)}"' in html
