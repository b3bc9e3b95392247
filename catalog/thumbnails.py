"""Thumbnails for pages, API and admin: made once per (photo content, size, format), on first request.

Files are thumbs/<size>/<sha256>.jpg (or .webp) in the media storage (STORAGES["default"], on disk or in
object storage): the name depends only on the content, so a photo shared by two products has one
thumbnail and a changed photo gets a new one. Storages write a file whole (shop_search.storage; an S3
PUT is atomic), so concurrent requests never serve a half-written one.

Pages offer each photo at several sizes in WebP (`thumbnail_set`, for `srcset`), with a JPEG for the
browsers that have no WebP; the sizes come from the stored photo's width and height, so a page can
say how large each file is without opening it.
"""

from __future__ import annotations

import io
import logging
import threading
import weakref
from dataclasses import dataclass
from typing import Literal

from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.core.signals import setting_changed
from PIL import Image, ImageOps

from catalog.models import FlaggedImage, ProductImage
from shop_search.storage import STORAGE_ERRORS

# Anything with a stored .image and its content's .sha256 can have a thumbnail.
Picture = ProductImage | FlaggedImage

logger = logging.getLogger(__name__)

MIN_SIZE, MAX_SIZE = 16, 1024
Format = Literal["jpeg", "webp"]
# (file extension, Pillow format, save options). WebP at quality 80 is about a third of the JPEG's
# bytes at the same look; method 4 is Pillow's default speed/size trade-off.
_FORMATS: dict[str, tuple[str, str, dict]] = {
    "jpeg": ("jpg", "JPEG", {"quality": 85, "optimize": True}),
    "webp": ("webp", "WEBP", {"quality": 80, "method": 4}),
}
# The sizes pages offer in a srcset: a phone's 2-column grid at 1x to a desktop card at 2x.
RESPONSIVE_SIZES = (160, 320, 640)
# Thumbnails known to exist in a remote storage: there every exists() is a network round trip, one per
# product on a results page. Safe to remember: a content-addressed name never changes content, and the
# site never deletes thumbnails (on disk, where exists() costs a stat, nothing is remembered).
_KNOWN_LIMIT = 100_000
_known: weakref.WeakKeyDictionary[Storage, set[str]] = weakref.WeakKeyDictionary()
_known_lock = threading.Lock()


@dataclass(frozen=True)
class Thumbnail:
    url: str
    width: int
    height: int


def thumbnail_name(image: Picture, size: int, fmt: Format = "jpeg") -> str:
    return f"thumbs/{size}/{image.sha256}.{_FORMATS[fmt][0]}"


def thumbnail_url(image: Picture, size: int = 320, fmt: Format = "jpeg") -> str:
    """URL of a JPEG (or WebP) at most ``size`` pixels on its longer side, made on first use.

    Falls back to the original photo's URL (and logs) when the stored photo cannot be read.
    """
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"Thumbnail size must be between {MIN_SIZE} and {MAX_SIZE} pixels, not {size}.")
    if fmt not in _FORMATS:
        raise ValueError(f"Thumbnail format must be one of {', '.join(_FORMATS)}, not {fmt!r}.")
    storage = storages["default"]
    name = thumbnail_name(image, size, fmt)
    if not _known_to_exist(storage, name):
        try:
            if not storage.exists(name):
                _store(storage, name, _render(image, size, fmt))
        except (*STORAGE_ERRORS, ValueError, Image.DecompressionBombError):
            logger.exception("Could not make a %spx %s thumbnail of image %s", size, fmt, image.pk)
            return image.image.url
        _remember(storage, name)
    return storage.url(name)


def thumbnail_dimensions(image: ProductImage, size: int) -> tuple[int, int]:
    """(width, height) of the ``size`` thumbnail, from the stored photo's upright size: thumbnails
    keep the aspect ratio and are never larger than the photo. (0, 0) when the size is unknown."""
    width, height = image.width, image.height
    if not width or not height:
        return 0, 0
    scale = min(1.0, size / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def thumbnail_set(
    image: ProductImage, sizes: tuple[int, ...] = RESPONSIVE_SIZES, fmt: Format = "webp"
) -> list[Thumbnail]:
    """The photo at each of ``sizes``, smallest first, for a srcset. A size the photo cannot fill is
    left out once a thumbnail already shows the whole photo (no two files of the same pixels)."""
    found: list[Thumbnail] = []
    for size in sorted(sizes):
        width, height = thumbnail_dimensions(image, size)
        if found and width and (width, height) == (found[-1].width, found[-1].height):
            break
        found.append(Thumbnail(thumbnail_url(image, size, fmt), width, height))
    return found


def _render(image: Picture, size: int, fmt: Format = "jpeg") -> bytes:
    # A handle of our own: FieldFile.open() shares one file object per model instance, which
    # concurrent requests for the same thumbnail would close under each other.
    field = image.image
    with field.storage.open(field.name, "rb") as handle, Image.open(handle) as picture:
        picture.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, much faster
        upright = ImageOps.exif_transpose(picture)
        upright.thumbnail((size, size), Image.Resampling.LANCZOS)
        rgb = _flatten(upright)
    out = io.BytesIO()
    _extension, pillow_format, options = _FORMATS[fmt]
    rgb.save(out, pillow_format, **options)
    return out.getvalue()


def _store(storage: Storage, name: str, content: bytes) -> None:
    saved = storage.save(name, ContentFile(content))
    if saved != name:
        # Another request stored the same thumbnail a moment ago (storages never overwrite, so ours got
        # another name): theirs is identical, ours goes.
        storage.delete(saved)


def _known_to_exist(storage: Storage, name: str) -> bool:
    with _known_lock:
        return name in _known.get(storage, ())


def _remember(storage: Storage, name: str) -> None:
    if isinstance(storage, FileSystemStorage):
        return
    with _known_lock:
        names = _known.setdefault(storage, set())
        if len(names) >= _KNOWN_LIMIT:
            names.clear()
        names.add(name)


def _forget_known(*, setting: str, **kwargs) -> None:
    if setting in ("STORAGES", "MEDIA_ROOT"):  # another storage, or the same one moved
        with _known_lock:
            _known.clear()


setting_changed.connect(_forget_known, dispatch_uid="catalog.thumbnails.forget_known")


def _flatten(picture: Image.Image) -> Image.Image:
    """RGB with any transparency put on white (JPEG has no alpha; product pages are white)."""
    if picture.mode in ("RGBA", "LA") or (picture.mode == "P" and "transparency" in picture.info):
        rgba = picture.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return picture.convert("RGB")
