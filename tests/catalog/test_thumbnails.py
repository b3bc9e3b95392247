"""Thumbnails: made once per photo content and size, upright, cached under MEDIA_ROOT/thumbs."""

import io
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from PIL import Image

from catalog.services import product_image_create
from catalog.thumbnails import thumbnail_url


@pytest.mark.django_db
def test_thumbnail_is_generated_once_and_cached(product, photo_bytes, settings):
    image = product_image_create(
        product=product, file=ContentFile(photo_bytes("apple.jpg"), name="a.jpg")
    ).image

    url = thumbnail_url(image, size=128)

    path = Path(settings.MEDIA_ROOT) / "thumbs" / "128" / f"{image.sha256}.jpg"
    assert url == f"/media/thumbs/128/{image.sha256}.jpg"
    with Image.open(path) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) == 128
    stamp = path.stat().st_mtime_ns
    assert thumbnail_url(image, size=128) == url
    assert path.stat().st_mtime_ns == stamp  # served from the cache, not made again
    assert list(path.parent.glob("*.part")) == []


@pytest.mark.django_db
def test_thumbnail_of_rotated_transparent_photo_is_upright_on_white(product, settings):
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated: 100 wide, 200 high
    buf = io.BytesIO()
    Image.new("RGB", (200, 100), (0, 0, 255)).save(buf, "JPEG", exif=exif)
    rotated = product_image_create(product=product, file=ContentFile(buf.getvalue())).image
    buf = io.BytesIO()
    Image.new("RGBA", (50, 50), (0, 0, 0, 0)).save(buf, "PNG")
    clear = product_image_create(product=product, file=ContentFile(buf.getvalue())).image

    with Image.open(Path(settings.MEDIA_ROOT) / thumbnail_url(rotated, 64).removeprefix("/media/")) as thumb:
        assert thumb.size == (32, 64)
    with Image.open(Path(settings.MEDIA_ROOT) / thumbnail_url(clear, 64).removeprefix("/media/")) as thumb:
        assert thumb.getpixel((10, 10)) == (255, 255, 255)


@pytest.mark.django_db
def test_thumbnail_falls_back_to_the_photo_when_its_file_is_gone(product, photo_bytes):
    image = product_image_create(product=product, file=ContentFile(photo_bytes("cup.webp"))).image
    Path(image.image.path).unlink()

    assert thumbnail_url(image) == image.image.url


def test_thumbnail_size_is_bounded():
    with pytest.raises(ValueError, match="between 16 and 1024"):
        thumbnail_url(None, size=5000)


@pytest.mark.django_db
def test_concurrent_first_requests_all_get_a_whole_thumbnail(product, photo_bytes, settings):
    from concurrent.futures import ThreadPoolExecutor

    image = product_image_create(product=product, file=ContentFile(photo_bytes("orange.jpg"))).image

    with ThreadPoolExecutor(max_workers=6) as pool:
        urls = set(pool.map(lambda _: thumbnail_url(image, 200), range(12)))

    folder = Path(settings.MEDIA_ROOT) / "thumbs" / "200"
    assert urls == {f"/media/thumbs/200/{image.sha256}.jpg"}
    assert [path.name for path in folder.iterdir()] == [f"{image.sha256}.jpg"]  # no temp files left
    with Image.open(folder / f"{image.sha256}.jpg") as thumb:
        thumb.load()  # a half-written file would fail to decode
        assert thumb.size == (200, 200)


@pytest.mark.django_db
def test_thumbnail_set_offers_webp_sizes_no_larger_than_the_photo(product, image_bytes, settings):
    from catalog.thumbnails import thumbnail_set

    wide = product_image_create(product=product, file=ContentFile(image_bytes((500, 250)))).image
    small = product_image_create(product=product, file=ContentFile(image_bytes((100, 90), (0, 90, 0)))).image

    found = thumbnail_set(wide, (160, 320, 640))
    assert [(t.width, t.height) for t in found] == [(160, 80), (320, 160), (500, 250)]
    for thumb in found:
        assert thumb.url.endswith(f"/{wide.sha256}.webp")
        with Image.open(Path(settings.MEDIA_ROOT) / thumb.url.removeprefix("/media/")) as picture:
            assert picture.format == "WEBP" and picture.size == (thumb.width, thumb.height)
    # A photo smaller than every size: one file, the photo's own size, not three copies of it.
    assert [(t.width, t.height) for t in thumbnail_set(small, (160, 320, 640))] == [(100, 90)]


@pytest.mark.django_db
def test_a_remote_storage_is_not_asked_again_about_a_thumbnail_it_holds(
    product, photo_bytes, settings, monkeypatch
):
    """Object storage: every exists() is a network round trip, once per product on a results page."""
    from django.core.files.storage import storages

    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    image = product_image_create(product=product, file=ContentFile(photo_bytes("apple.jpg"))).image
    storage = storages["default"]
    first = thumbnail_url(image, size=128)  # made and stored now
    asked: list[str] = []
    real_exists = storage.exists
    monkeypatch.setattr(storage, "exists", lambda name: asked.append(name) or real_exists(name))

    again = {thumbnail_url(image, size=128) for _ in range(3)}

    assert again == {first} == {f"/media/thumbs/128/{image.sha256}.jpg"}
    assert asked == []  # known to exist: not asked again
    with storage.open(f"thumbs/128/{image.sha256}.jpg") as handle, Image.open(handle) as thumb:
        assert max(thumb.size) == 128


@pytest.mark.django_db
def test_thumbnail_falls_back_to_the_photo_when_the_object_store_is_down(product, photo_bytes, monkeypatch):
    from botocore.exceptions import EndpointConnectionError
    from django.core.files.storage import storages

    image = product_image_create(product=product, file=ContentFile(photo_bytes("cup.webp"))).image

    def down(name):
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9/bucket")

    monkeypatch.setattr(storages["default"], "exists", down)  # what django-storages' S3 backend raises

    assert thumbnail_url(image, size=96) == image.image.url
