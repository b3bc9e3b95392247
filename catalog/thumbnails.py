"""Thumbnails for pages, API and admin: made once per (photo content, size), on first request.

Files are thumbs/<size>/<sha256>.jpg in the media storage (STORAGES["default"], on disk or in object
storage): the name depends only on the content, so a photo shared by two products has one thumbnail
and a changed photo gets a new one. Storages write a file whole (shop_search.storage; an S3 PUT is
atomic), so concurrent requests never serve a half-written one.
"""

from __future__ import annotations

import io
import logging
import threading
import weakref

from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.core.signals import setting_changed
from PIL import Image, ImageOps

from catalog.models import FlaggedImage, ProductImage

# Anything with a stored .image and its content's .sha256 can have a thumbnail.
Picture = ProductImage | FlaggedImage

logger = logging.getLogger(__name__)

MIN_SIZE, MAX_SIZE = 16, 1024
JPEG_QUALITY = 85
# Thumbnails known to exist in a remote storage: there every exists() is a network round trip, one per
# product on a results page. Safe to remember: a content-addressed name never changes content, and the
# site never deletes thumbnails (on disk, where exists() costs a stat, nothing is remembered).
_KNOWN_LIMIT = 100_000
_known: weakref.WeakKeyDictionary[Storage, set[str]] = weakref.WeakKeyDictionary()
_known_lock = threading.Lock()


def thumbnail_name(image: Picture, size: int) -> str:
    return f"thumbs/{size}/{image.sha256}.jpg"


def thumbnail_url(image: Picture, size: int = 320) -> str:
    """URL of a JPEG at most ``size`` pixels on its longer side, made on first use.

    Falls back to the original photo's URL (and logs) when the stored photo cannot be read.
    """
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"Thumbnail size must be between {MIN_SIZE} and {MAX_SIZE} pixels, not {size}.")
    storage = storages["default"]
    name = thumbnail_name(image, size)
    if not _known_to_exist(storage, name):
        try:
            if not storage.exists(name):
                _store(storage, name, _render(image, size))
        except (OSError, ValueError, Image.DecompressionBombError):
            logger.exception("Could not make a %spx thumbnail of image %s", size, image.pk)
            return image.image.url
        _remember(storage, name)
    return storage.url(name)


def _render(image: Picture, size: int) -> bytes:
    # A handle of our own: FieldFile.open() shares one file object per model instance, which
    # concurrent requests for the same thumbnail would close under each other.
    field = image.image
    with field.storage.open(field.name, "rb") as handle, Image.open(handle) as picture:
        picture.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, much faster
        upright = ImageOps.exif_transpose(picture)
        upright.thumbnail((size, size), Image.Resampling.LANCZOS)
        rgb = _flatten(upright)
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()


def _store(storage: Storage, name: str, jpeg: bytes) -> None:
    saved = storage.save(name, ContentFile(jpeg))
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
