"""Untrusted query photos and the one error shape under /api/: every bad input class answers a 4xx
JSON {"detail", "code"} naming the problem, quickly, and the server answers the next request."""

import io
import struct
import zipfile
import zlib

import pytest
from django.test import RequestFactory

from search.api.exceptions import not_found, server_error
from search.uploads import QueryImageError, read_upload
from tests.search.shop_helpers import build_now

pytestmark = pytest.mark.django_db

SEARCH = "/api/v1/search/"


def upload(name: str, data: bytes):
    file = io.BytesIO(data)
    file.name = name
    return file


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bomb(side: int = 30_000) -> bytes:
    """A real 1-bit PNG of side x side pixels (900 Mpx at 30000): ~100 KB that would decode to ~110 MB."""
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale
    row = b"\0" * (1 + (side + 7) // 8)  # filter byte + packed bits
    squeeze = zlib.compressobj(9)
    idat = b"".join(squeeze.compress(row) for _ in range(side)) + squeeze.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("Evil.class", b"\xca\xfe\xba\xbe payload")
    return buf.getvalue()


def assert_error(response, status: int, code: str, words: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] == code
    assert words in body["detail"].lower()


def search_file(client, name: str, data: bytes):
    return client.post(SEARCH, {"image": upload(name, data)})


def test_zero_byte_file(client, shop):
    assert_error(search_file(client, "empty.jpg", b""), 400, "empty", "empty")


def test_truncated_jpeg(client, shop, photo_bytes):
    whole = photo_bytes("apple.jpg")
    assert_error(search_file(client, "apple.jpg", whole[: len(whole) // 2]), 400, "truncated", "truncated")


def test_text_file_named_jpg(client, shop):
    data = b"Just some notes, not a photo at all.\n" * 20
    assert_error(search_file(client, "photo.jpg", data), 400, "not_an_image", "not a picture")


def test_html_named_png_with_image_content_type(client, shop):
    page = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
    response = client.post(SEARCH, {"image": upload("x.png", page)})
    assert_error(response, 400, "not_an_image", "not a picture")


@pytest.mark.parametrize(
    "side",
    [
        30_000,  # 900 Mpx: past Pillow's own bomb guard, refused while opening
        7_000,  # 49 Mpx: Pillow would decode it; the SEARCH_QUERY_MAX_PIXELS check (40 Mpx) must not
    ],
)
def test_png_decompression_bomb_is_refused_before_any_pixel_is_decoded(
    client, shop, side, pixel_decoding_refused
):
    response = search_file(client, "bomb.png", png_bomb(side))

    assert_error(response, 413, "too_many_pixels", "too many pixels")
    assert pixel_decoding_refused == []  # refused from the header alone


def test_pixel_limit_setting_applies_below_pillows_own_limit(client, shop, image_bytes, settings):
    settings.SEARCH_QUERY_MAX_PIXELS = 1_000_000
    response = search_file(client, "wide.png", image_bytes((2000, 1000), fmt="PNG"))
    assert_error(response, 413, "too_many_pixels", "1 megapixels")


def test_oversized_upload_is_refused_before_parsing(client, shop, settings, photo_bytes):
    settings.SEARCH_QUERY_MAX_BYTES = 100_000
    big = photo_bytes("apple.jpg") + b"\0" * 300_000
    assert_error(search_file(client, "big.jpg", big), 413, "too_large", "too large")


def test_oversized_base64_is_refused(client, shop, settings):
    settings.SEARCH_QUERY_MAX_BYTES = 10_000
    response = client.post(SEARCH, {"image": "A" * 40_000}, content_type="application/json")
    assert_error(response, 413, "too_large", "too large")


def test_invalid_base64(client, shop):
    response = client.post(SEARCH, {"image": "not base64 at all!"}, content_type="application/json")
    assert_error(response, 400, "bad_base64", "base64")


def test_upload_cap_holds_while_reading_chunks():
    """A file that misreports its size is still cut off after max_bytes, not read to the end."""

    class Endless(io.RawIOBase):
        size = None
        served = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            self.served += len(buffer)
            buffer[:] = b"\xff" * len(buffer)
            return len(buffer)

    endless = Endless()
    with pytest.raises(QueryImageError) as info:
        read_upload(endless, max_bytes=200_000)
    assert info.value.code == "too_large"
    assert endless.served < 400_000


@pytest.mark.parametrize(
    ("label", "tail"),
    [
        ("jpeg+zip", zip_bytes()),
        ("jpeg+html", b"<html><body><script>fetch('/admin/')</script></body></html>"),
        ("jpeg+php", b"<?php system($_GET['c']); ?>"),
    ],
)
def test_polyglot_jpeg_is_refused(client, shop, photo_bytes, label, tail):
    # Pillow alone would happily decode these (the extra bytes follow the JPEG's end marker).
    response = search_file(client, f"{label}.jpg", photo_bytes("apple.jpg") + tail)
    assert_error(response, 400, "polyglot", "besides a picture")


def test_gifar_is_refused(client, shop, image_bytes):
    gifar = image_bytes((40, 40), fmt="GIF") + zip_bytes()
    assert_error(search_file(client, "avatar.gif", gifar), 400, "polyglot", "archive")


def test_server_answers_the_next_request_after_bad_input(client, shop, photo_bytes):
    build_now()
    for data in (b"", b"junk", png_bomb(20_000), photo_bytes("apple.jpg")[:5000]):
        assert search_file(client, "bad.jpg", data).status_code in {400, 413}
    response = search_file(client, "good.webp", photo_bytes("cup.webp"))
    assert response.status_code == 200
    assert response.json()["results"][0]["product"]["sku"] == "cup"


def test_unsupported_media_type_is_json_415(client, shop):
    response = client.post(SEARCH, "url=http://x", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type", "unsupported media type")


def test_malformed_json_is_json_400(client, shop):
    response = client.post(SEARCH, "{not json", content_type="application/json")
    assert_error(response, 400, "parse_error", "json parse error")


def test_json_array_body_is_refused(client, shop):
    response = client.post(SEARCH, [1, 2], content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"non_field_errors": ["Expected a JSON object."]}


def test_method_not_allowed_is_json_405(client):
    assert_error(client.get(SEARCH), 405, "method_not_allowed", "not allowed")


def test_unknown_api_path_is_json_404(client):
    assert_error(client.get("/api/v1/no-such-thing/"), 404, "not_found", "not found")
    assert_error(client.get("/api/v2/"), 404, "not_found", "not found")


def test_unknown_api_path_is_json_404_with_debug_on_too(client, settings):
    settings.DEBUG = True
    assert_error(client.post("/api/v1/nothing/here/", {"a": 1}), 404, "not_found", "not found")


def test_missing_trailing_slash_gets_a_hint(client):
    response = client.post("/api/v1/search", {}, content_type="application/json")
    assert_error(response, 404, "not_found", "did you mean /api/v1/search/")


def test_unknown_page_path_stays_html(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_unknown_product_is_json_404(client, shop):
    assert_error(client.get("/api/v1/products/999999/"), 404, "not_found", "no such product")


def test_search_unavailable_is_json_503(client, shop, photo_bytes, settings, fresh_embedder):
    # A real model-load failure: an explicit weights file that is not there (no fallback for that).
    settings.SEARCH_WEIGHTS_PATH = "/nonexistent/resnet50.pth"
    response = search_file(client, "q.webp", photo_bytes("cup.webp"))
    assert_error(response, 503, "search_unavailable", "could not be loaded")


def test_unexpected_error_is_json_500_without_traceback(client, shop, photo_bytes, monkeypatch):
    from search.api import views

    def bug(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(views, "photo_search", bug)
    response = search_file(client, "q.webp", photo_bytes("cup.webp"))
    assert_error(response, 500, "server_error", "internal server error")
    assert b"secret internal detail" not in response.content and b"Traceback" not in response.content


def test_project_handlers_answer_json_only_under_api():
    factory = RequestFactory()
    api_404 = not_found(factory.get("/api/v1/whatever/"), Exception("x"))
    api_500 = server_error(factory.get("/api/v1/search/"))
    page_500 = server_error(factory.get("/"))
    assert api_404.status_code == 404 and api_404["Content-Type"] == "application/json"
    assert api_500.status_code == 500 and b'"code": "server_error"' in api_500.content
    assert page_500.status_code == 500 and page_500["Content-Type"].startswith("text/html")


def test_base64_photo_just_under_the_limit_is_accepted(client, shop, settings):
    """The Content-Length check allows for base64's extra third on JSON requests."""
    import base64
    import os

    from PIL import Image

    noise = Image.frombytes("RGB", (400, 350), os.urandom(400 * 350 * 3))
    buf = io.BytesIO()
    noise.save(buf, format="PNG")
    photo = buf.getvalue()
    settings.SEARCH_QUERY_MAX_BYTES = len(photo) + 100
    payload = {"image": base64.encodebytes(photo).decode()}  # with line breaks, as some clients send

    response = client.post(SEARCH, payload, content_type="application/json")
    assert response.status_code == 200, response.content

    settings.SEARCH_QUERY_MAX_BYTES = len(photo) - 100
    response = client.post(SEARCH, payload, content_type="application/json")
    assert_error(response, 413, "too_large", "too large")


def test_deeply_nested_json_is_400_not_500(client, shop):
    response = client.post(SEARCH, "[" * 200_000, content_type="application/json")
    assert_error(response, 400, "parse_error", "nested too deeply")
