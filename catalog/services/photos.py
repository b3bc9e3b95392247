"""Checking a photo before the catalog stores it: size, format, pixels, integrity, no second payload.

Used by product photos and flagged pictures alike; nothing here writes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import IO

import imagehash
from django.conf import settings
from django.core.exceptions import ValidationError
from PIL import Image

from catalog.imaging import (
    FileTooLarge,
    ImageDecodeError,
    ImageTooLarge,
    PolyglotImage,
    load_image,
    read_capped,
    refuse_polyglot,
)


class ImageRejected(ValidationError):
    """A photo the catalog refuses: unreadable, too big, wrong format or flagged. The message says why."""


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
    try:
        data = read_capped(file, max_bytes=limit)
    except FileTooLarge as exc:
        raise ImageRejected(_too_big_message(exc.size, limit), code="image_too_big") from exc
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
