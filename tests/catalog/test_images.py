"""Storing product photos: validation by decoding, content hashes, idempotency, order, deletion."""

import io
import struct
import zlib
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from PIL import Image

from catalog.models import ProductImage
from catalog.services import (
    ImageRejected,
    product_delete,
    product_image_create,
    product_image_delete,
    product_image_reorder,
)


def _png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG declaring width x height 1-bit pixels: megabytes of zeros compress to almost nothing."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def _rotated_jpeg(width: int, height: int, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def test_real_photo_is_stored_with_hashes_and_dimensions(product, upload, photo_path):
    result = product_image_create(product=product, file=upload("hammer1.webp"))

    image = result.image
    assert result.created and result.warnings == []
    with Image.open(photo_path("hammer1.webp")) as original:
        assert (image.width, image.height) == original.size
    assert len(image.sha256) == 64 and len(image.phash) == 16
    assert image.original_name == "hammer1.webp"
    assert image.image.name.endswith(f"{image.sha256}.webp")
    assert Path(image.image.path).read_bytes() == photo_path("hammer1.webp").read_bytes()


def test_same_photo_twice_returns_the_existing_row(product, upload):
    first = product_image_create(product=product, file=upload("cup.webp"))
    again = product_image_create(product=product, file=upload("cup.webp"))

    assert again.created is False
    assert again.image.pk == first.image.pk
    assert ProductImage.objects.filter(product=product).count() == 1


def test_display_order_follows_the_last_photo(product, upload):
    orders = [
        product_image_create(product=product, file=upload(name)).image.display_order
        for name in ("hammer1.webp", "hammer2.webp", "apple.jpg")
    ]

    assert orders == [0, 1, 2]
    assert product.primary_image.original_name == "hammer1.webp"


def test_exif_rotation_gives_upright_dimensions(product):
    # Orientation 6: the camera held sideways; the picture shown is 300 wide and 400 high.
    result = product_image_create(product=product, file=ContentFile(_rotated_jpeg(400, 300, 6), name="r.jpg"))

    result.image.refresh_from_db()
    assert (result.image.width, result.image.height) == (300, 400)


def test_format_is_decided_by_decoding_not_by_name(product, photo_bytes):
    result = product_image_create(product=product, file=ContentFile(photo_bytes("box.png"), name="box.jpg"))

    assert result.image.image.name.endswith(".png")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"just some text, not a picture\n" * 20, "not an image"),
    ],
    ids=["zero-bytes", "text-named-jpg"],
)
def test_non_images_are_refused(product, data, words):
    with pytest.raises(ImageRejected, match=words):
        product_image_create(product=product, file=ContentFile(data, name="photo.jpg"))
    assert not ProductImage.objects.exists()


def test_truncated_jpeg_is_refused(product, photo_bytes):
    data = photo_bytes("apple.jpg")

    with pytest.raises(ImageRejected, match="truncated"):
        product_image_create(product=product, file=ContentFile(data[: len(data) // 2], name="apple.jpg"))
    assert not ProductImage.objects.exists()


@pytest.mark.parametrize(
    "side",
    [
        20_000,  # 400 Mpx: past Pillow's own bomb guard, refused while opening
        8_000,  # 64 Mpx: Pillow would decode it; the CATALOG_IMAGE_MAX_PIXELS check (40 Mpx) must not
    ],
)
def test_decompression_bomb_is_refused_before_any_pixel_is_decoded(product, side, pixel_decoding_refused):
    bomb = _png_bomb(side, side)  # a few KB on disk, tens or hundreds of MB once decoded

    with pytest.raises(ImageRejected, match="pixels"):
        product_image_create(product=product, file=ContentFile(bomb, name="bomb.png"))

    assert pixel_decoding_refused == []  # refused from the header alone
    assert not ProductImage.objects.exists()


def test_too_many_pixels_for_the_setting_is_refused(product, settings, image_bytes):
    settings.CATALOG_IMAGE_MAX_PIXELS = 100 * 100

    with pytest.raises(ImageRejected, match="10,000"):
        product_image_create(product=product, file=ContentFile(image_bytes((200, 100)), name="a.jpg"))


def test_oversized_file_is_refused_by_size(product, settings, photo_bytes):
    settings.CATALOG_IMAGE_MAX_BYTES = 10_000

    with pytest.raises(ImageRejected, match="limit is"):
        product_image_create(product=product, file=ContentFile(photo_bytes("apple.jpg"), name="apple.jpg"))


def test_format_not_in_settings_is_refused(product, settings, image_bytes):
    settings.CATALOG_IMAGE_FORMATS = ["JPEG", "PNG"]

    with pytest.raises(ImageRejected, match="GIF"):
        product_image_create(product=product, file=ContentFile(image_bytes(fmt="GIF"), name="a.gif"))


def test_same_photo_on_two_products_shares_one_file(make_product, upload):
    first = product_image_create(product=make_product("A"), file=upload("chair.webp")).image
    second = product_image_create(product=make_product("B"), file=upload("chair.webp")).image

    assert first.image.name == second.image.name


def test_file_is_removed_once_the_delete_commits(product, upload, django_capture_on_commit_callbacks):
    image = product_image_create(product=product, file=upload("pan.webp")).image
    path = Path(image.image.path)

    with django_capture_on_commit_callbacks(execute=True):
        product_image_delete(image=image)

    assert not path.exists()
    assert not ProductImage.objects.filter(pk=image.pk).exists()


def test_shared_file_survives_deleting_one_of_its_products(
    make_product, upload, django_capture_on_commit_callbacks
):
    first = product_image_create(product=make_product("A"), file=upload("bulb.webp")).image
    kept = product_image_create(product=make_product("B"), file=upload("bulb.webp")).image

    with django_capture_on_commit_callbacks(execute=True):
        product_delete(product=first.product)

    assert Path(kept.image.path).exists()


def test_delete_renumbers_and_reorder_changes_primary(product, upload):
    images = [
        product_image_create(product=product, file=upload(n)).image
        for n in ("hammer1.webp", "hammer2.webp", "apple.jpg")
    ]
    product_image_delete(image=images[0])
    assert [i.display_order for i in product.images.all()] == [0, 1]

    product_image_reorder(product=product, image_ids=[images[2].pk])

    assert [i.pk for i in product.images.all()] == [images[2].pk, images[1].pk]
    assert product.primary_image.pk == images[2].pk


def test_reorder_refuses_photos_of_another_product(product, make_product, upload):
    other = product_image_create(product=make_product("X"), file=upload("cup.webp")).image

    with pytest.raises(ValidationError, match="do not belong"):
        product_image_reorder(product=product, image_ids=[other.pk])


@pytest.mark.slow
def test_embedding_is_computed_after_commit(product, upload, django_capture_on_commit_callbacks):
    from search.models import ImageEmbedding

    with django_capture_on_commit_callbacks(execute=True):
        image = product_image_create(product=product, file=upload("scissors1.webp")).image

    embedding = ImageEmbedding.objects.get(image=image)
    assert embedding.status == ImageEmbedding.Status.DONE
    assert embedding.content_sha256 == image.sha256


def _media_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def test_a_failed_database_write_leaves_no_file_behind(product, upload, settings, monkeypatch):
    from django.db import OperationalError

    def locked(self, *args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(ProductImage, "save", locked)
    with pytest.raises(OperationalError):
        product_image_create(product=product, file=upload("cup.webp"))
    assert _media_files(settings) == []
    monkeypatch.undo()
    # The same upload works once the database answers again, and its file is there.
    result = product_image_create(product=product, file=upload("cup.webp"))
    assert result.created and Path(result.image.image.path).exists()
