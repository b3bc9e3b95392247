"""Product photos: store content-addressed (after catalog.services.photos checks them), announce them
(catalog.hooks.photo_stored, on commit), delete, reorder.

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

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Max

from catalog.hooks import PhotoWarning, photo_stored, screening_warnings
from catalog.models import Product, ProductImage, product_image_upload_to

from .moderation import image_screen
from .photos import DecodedPhoto, decode_photo, read_limited

# File extension stored for each accepted format (decided by decoding, not by the upload's name).
_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tif"}


@dataclass
class ImageCreateResult:
    image: ProductImage
    created: bool
    warnings: list[PhotoWarning] = field(default_factory=list)


def product_image_create(
    *,
    product: Product,
    file: IO[bytes] | bytes,
    display_order: int | None = None,
    original_name: str = "",
) -> ImageCreateResult:
    """Validate and store a photo of ``product``; the same content twice returns the existing row.

    Raises ImageRejected (unreadable, too big, wrong format, flagged). Warnings name other products
    that already hold a near-identical photo (an upload is not blocked for that). The screens run
    before this function opens a transaction (one of them may run an image model). When the database
    write fails (e.g. SQLite busy past its timeout), the file written for it is removed again; not
    covered: a caller's own outer transaction that rolls back after this returned.
    """
    data = read_limited(file)
    sha256 = hashlib.sha256(data).hexdigest()
    existing = ProductImage.objects.filter(product=product, sha256=sha256).first()
    if existing is not None:
        return ImageCreateResult(image=existing, created=False)
    photo = decode_photo(data)
    warnings = image_screen(sha256=photo.sha256, phash=photo.phash, product=product)
    warnings += screening_warnings(
        picture=photo.picture, sha256=photo.sha256, phash=photo.phash, product=product
    )
    name = original_name or getattr(file, "name", "") or ""
    written: list[str] = []
    try:
        image, created = _photo_store(
            product=product, photo=photo, display_order=display_order, name=name, written=written
        )
    except BaseException:
        photo_files_delete_unreferenced(written)
        raise
    return ImageCreateResult(image=image, created=created, warnings=warnings if created else [])


def photo_files_delete_unreferenced(names: list[str]) -> None:
    """Delete files stored for photos whose rows were rolled back, unless another photo row uses the
    same file (content-addressed names: another product, or a request that stored it meanwhile)."""
    for name in names:
        if not ProductImage.objects.filter(image=name).exists():
            default_storage.delete(name)


@transaction.atomic
def _photo_store(
    *, product: Product, photo: DecodedPhoto, display_order: int | None, name: str, written: list[str]
) -> tuple[ProductImage, bool]:
    try:
        with transaction.atomic():
            image = _image_store(
                product=product, photo=photo, display_order=display_order, name=name, written=written
            )
    except IntegrityError:
        # Another request stored the same photo for this product a moment ago: that row is ours too.
        existing = ProductImage.objects.filter(product=product, sha256=photo.sha256).first()
        if existing is None:
            raise
        return existing, False
    # Announced once committed: search embeds it then (the worker must see the row).
    transaction.on_commit(lambda: photo_stored.send(sender=ProductImage, image_id=image.pk))
    return image, True


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
