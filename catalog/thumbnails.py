"""Thumbnails for pages, API and admin: made once per (photo content, size), on first request.

Files live at MEDIA_ROOT/thumbs/<size>/<sha256>.jpg: the name depends only on the content, so a
photo shared by two products has one thumbnail and a changed photo gets a new one. Writers use a
temporary file and os.replace, so concurrent requests never serve a half-written file.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from PIL import Image, ImageOps

from catalog.models import FlaggedImage, ProductImage

# Anything with a stored .image and its content's .sha256 can have a thumbnail.
Picture = ProductImage | FlaggedImage

logger = logging.getLogger(__name__)

MIN_SIZE, MAX_SIZE = 16, 1024
JPEG_QUALITY = 85


def thumbnail_name(image: Picture, size: int) -> str:
    return f"thumbs/{size}/{image.sha256}.jpg"


def thumbnail_url(image: Picture, size: int = 320) -> str:
    """URL of a JPEG at most ``size`` pixels on its longer side, made on first use.

    Falls back to the original photo's URL (and logs) when the stored photo cannot be read.
    """
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"Thumbnail size must be between {MIN_SIZE} and {MAX_SIZE} pixels, not {size}.")
    name = thumbnail_name(image, size)
    target = Path(settings.MEDIA_ROOT) / name
    if not target.exists():
        try:
            _generate(image, size, target)
        except (OSError, ValueError, Image.DecompressionBombError):
            logger.exception("Could not make a %spx thumbnail of image %s", size, image.pk)
            return image.image.url
    return default_storage.url(name)


def _generate(image: Picture, size: int, target: Path) -> None:
    # A handle of our own: FieldFile.open() shares one file object per model instance, which
    # concurrent requests for the same thumbnail would close under each other.
    field = image.image
    with field.storage.open(field.name, "rb") as handle, Image.open(handle) as picture:
        picture.draft("RGB", (size, size))  # JPEG: decode at a reduced scale, much faster
        upright = ImageOps.exif_transpose(picture)
        upright.thumbnail((size, size), Image.Resampling.LANCZOS)
        rgb = _flatten(upright)
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    try:
        with os.fdopen(descriptor, "wb") as out:
            rgb.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
        os.chmod(temp, 0o644)  # mkstemp makes it private; the web server must be able to read it
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _flatten(picture: Image.Image) -> Image.Image:
    """RGB with any transparency put on white (JPEG has no alpha; product pages are white)."""
    if picture.mode in ("RGBA", "LA") or (picture.mode == "P" and "transparency" in picture.info):
        rgba = picture.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return picture.convert("RGB")
