"""Product photos: validate, store content-addressed, schedule embedding, delete, reorder.

Storage choice: the original bytes are stored untouched (no re-encoding loss, and the sha256 names
the exact file), while ``width``/``height`` are those of the upright picture after EXIF
orientation, which is what every page and thumbnail shows.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO

import imagehash
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Max
from PIL import Image

from catalog.imaging import ImageDecodeError, ImageTooLarge, PolyglotImage, load_image, refuse_polyglot
from catalog.models import Product, ProductImage, product_image_upload_to

# File extension stored for each accepted format (decided by decoding, not by the upload's name).
_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tif"}


class ImageRejected(ValidationError):
    """A photo the catalog refuses: unreadable, too big, wrong format or flagged. The message says why."""


@dataclass
class ImageCreateResult:
    image: ProductImage
    created: bool
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DecodedPhoto:
    """A validated upload: its bytes, upright RGB picture, source format and content hashes."""

    data: bytes
    picture: Image.Image
    format: str
    sha256: str
    phash: str


def read_limited(file: IO[bytes] | bytes, *, max_bytes: int | None = None) -> bytes:
    """The file's bytes, refusing anything larger than CATALOG_IMAGE_MAX_BYTES without reading it all."""
    limit = settings.CATALOG_IMAGE_MAX_BYTES if max_bytes is None else max_bytes
    if isinstance(file, (bytes, bytearray)):
        data = bytes(file)
    else:
        declared = getattr(file, "size", None)
        if isinstance(declared, int) and declared > limit:
            raise ImageRejected(_too_big_message(declared, limit), code="image_too_big")
        if hasattr(file, "seek"):
            file.seek(0)
        data = file.read(limit + 1)  # one byte more than allowed is enough to know it is too big
    if len(data) > limit:
        raise ImageRejected(_too_big_message(len(data), limit), code="image_too_big")
    if not data:
        raise ImageRejected("The file is empty.", code="image_empty")
    return data


def _too_big_message(size: int, limit: int) -> str:
    return f"The file is {size / 1_048_576:.1f} MB; the limit is {limit / 1_048_576:.1f} MB."


def decode_photo(data: bytes) -> DecodedPhoto:
    """Decode and check an upload (format, pixel count, integrity, no second payload) and compute its
    hashes. The same polyglot check as shoppers' query photos: the stored file is served back as is."""
    picture = _decode(data)
    try:
        refuse_polyglot(data)
    except PolyglotImage as exc:
        raise ImageRejected(str(exc), code="image_polyglot") from exc
    return DecodedPhoto(
        data=data,
        picture=picture,
        format=picture.format or "",
        sha256=hashlib.sha256(data).hexdigest(),
        phash=str(imagehash.phash(picture)),
    )


def _decode(data: bytes) -> Image.Image:
    """Upright RGB picture via catalog.imaging.load_image, the one decoder of the house.

    It checks the format (by decoding, not by name) and the pixel count from the header, so a
    decompression bomb is refused before any pixel is decoded.
    """
    try:
        return load_image(
            data, max_pixels=settings.CATALOG_IMAGE_MAX_PIXELS, formats=settings.CATALOG_IMAGE_FORMATS
        )
    except ImageTooLarge as exc:
        raise ImageRejected(str(exc), code="image_too_large") from exc
    except ImageDecodeError as exc:
        raise ImageRejected(str(exc), code="image_unreadable") from exc


def product_image_create(
    *,
    product: Product,
    file: IO[bytes] | bytes,
    display_order: int | None = None,
    original_name: str = "",
) -> ImageCreateResult:
    """Validate and store a photo of ``product``; the same content twice returns the existing row.

    Raises ImageRejected (unreadable, too big, wrong format, flagged). Warnings name other products
    that already hold a near-identical photo (an upload is not blocked for that). When the database
    write fails (e.g. SQLite busy past its timeout), the file written for it is removed again.
    Not covered: a caller's own outer transaction that rolls back after this returned.
    """
    written: list[str] = []
    try:
        return _product_image_create(
            product=product,
            file=file,
            display_order=display_order,
            original_name=original_name,
            written=written,
        )
    except BaseException:
        photo_files_delete_unreferenced(written)
        raise


def photo_files_delete_unreferenced(names: list[str]) -> None:
    """Delete files stored for photos whose rows were rolled back, unless another photo row uses the
    same file (content-addressed names: another product, or a request that stored it meanwhile)."""
    for name in names:
        if not ProductImage.objects.filter(image=name).exists():
            default_storage.delete(name)


@transaction.atomic
def _product_image_create(
    *,
    product: Product,
    file: IO[bytes] | bytes,
    display_order: int | None,
    original_name: str,
    written: list[str],
) -> ImageCreateResult:
    from catalog.moderation import image_screen

    data = read_limited(file)
    sha256 = hashlib.sha256(data).hexdigest()
    existing = ProductImage.objects.filter(product=product, sha256=sha256).first()
    if existing is not None:
        return ImageCreateResult(image=existing, created=False)
    photo = decode_photo(data)
    notes = image_screen(image=photo.picture, sha256=photo.sha256, phash=photo.phash, product=product)
    name = original_name or getattr(file, "name", "") or ""
    try:
        with transaction.atomic():
            image = _image_store(
                product=product, photo=photo, display_order=display_order, name=name, written=written
            )
    except IntegrityError:
        # Another request stored the same photo for this product a moment ago: that row is ours too.
        existing = ProductImage.objects.filter(product=product, sha256=sha256).first()
        if existing is None:
            raise
        return ImageCreateResult(image=existing, created=False)
    _embedding_schedule(image)  # enqueues with delay_on_commit: the worker sees the committed row
    return ImageCreateResult(image=image, created=True, warnings=notes)


def _image_store(
    *, product: Product, photo: DecodedPhoto, display_order: int | None, name: str, written: list[str]
) -> ProductImage:
    if display_order is None:
        last = product.images.aggregate(last=Max("display_order"))["last"]
        display_order = 0 if last is None else last + 1
    image = ProductImage(
        product=product,
        display_order=display_order,
        sha256=photo.sha256,
        phash=photo.phash,
        original_name=os.path.basename(name)[:255],
    )
    stored_name = product_image_upload_to(image, f"photo.{_EXTENSIONS.get(photo.format, 'img')}")
    if default_storage.exists(stored_name):
        # Content-addressed: the identical file is already stored (another product, or an earlier try).
        image.image.name = stored_name
    else:
        image.image.save(stored_name, ContentFile(photo.data), save=False)
        written.append(image.image.name)
    # Django reads dimensions from the raw file; the upright (EXIF-applied) ones are what users see.
    image.width, image.height = photo.picture.size
    image.save()
    return image


def _embedding_schedule(image: ProductImage) -> None:
    from search.services import image_embedding_schedule

    image_embedding_schedule(image)


@transaction.atomic
def product_image_delete(*, image: ProductImage) -> None:
    """Delete a photo; its file goes once the deletion commits (see catalog.signals)."""
    product = image.product
    image.delete()
    _renumber(product.images.order_by("display_order", "id"))


@transaction.atomic
def product_image_reorder(*, product: Product, image_ids: list[int]) -> list[ProductImage]:
    """Put the product's photos in the given order (the first is the primary photo).

    Photos not named keep their relative order after the named ones.
    """
    images = {image.pk: image for image in product.images.select_for_update()}
    unknown = [pk for pk in image_ids if pk not in images]
    if unknown:
        raise ValidationError(
            f"Images {unknown} do not belong to product {product.sku}.", code="image_not_of_product"
        )
    if len(set(image_ids)) != len(image_ids):
        raise ValidationError("An image is listed twice in the new order.", code="image_listed_twice")
    named = [images[pk] for pk in image_ids]
    rest = sorted(
        (image for pk, image in images.items() if pk not in set(image_ids)),
        key=lambda image: (image.display_order, image.pk),
    )
    return _renumber(named + rest)


def _renumber(images: Iterable[ProductImage]) -> list[ProductImage]:
    ordered = list(images)
    changed = []
    for position, image in enumerate(ordered):
        if image.display_order != position:
            image.display_order = position
            changed.append(image)
    ProductImage.objects.bulk_update(changed, ["display_order"])
    return ordered
