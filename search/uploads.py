"""Reading and checking a shopper's query photo: shared by the JSON API and the shop-by-photo page.

Everything here treats the bytes as hostile. Size is capped before a body or file is read whole,
the format is decided by decoding (never by file name or declared content type), the pixel count is
checked from the header before any pixel is decoded, and files carrying a second payload (a ZIP
archive or HTML/script appended to a picture) are refused. Each problem raises QueryImageError with
a stable code and a message a shopper can act on.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from typing import IO, Any

from django.conf import settings
from PIL import Image

from catalog.imaging import (
    DRAFT_MARGIN,
    FileTooLarge,
    ImageDecodeError,
    ImageTooLarge,
    PolyglotImage,
    load_image,
    read_capped,
    refuse_polyglot,
)

# Formats a query may be in. EPS, PSD, ICO and Pillow's other plugins are never tried: the format
# is decided by decoding, and only these decoders get to look at the bytes.
Crop = tuple[float, float, float, float]  # x, y, w, h as fractions of the picture
QUERY_IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
# Room for the multipart boundary, headers and the small form fields next to the photo.
FORM_OVERHEAD_BYTES = 64 * 1024
_DATA_URL_PREFIX = re.compile(r"^data:image/[a-z0-9.+-]+;base64,", re.IGNORECASE)


# The one code -> HTTP status map for unusable photos (query photos, fetched URLs, catalog uploads):
# too big is 413, anything else wrong with a photo is the client's 400.
HTTP_STATUS = {"too_large": 413, "too_many_pixels": 413, "image_too_big": 413, "image_too_large": 413}


def http_status(code: str | None) -> int:
    return HTTP_STATUS.get(code or "", 400)


class QueryImageError(ValueError):
    """A query photo that cannot be used. `code` is stable for clients; `message` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status_code(self) -> int:
        return http_status(self.code)


def max_query_bytes() -> int:
    return settings.SEARCH_QUERY_MAX_BYTES


def _too_large(max_bytes: int) -> QueryImageError:
    return QueryImageError("too_large", f"The photo is too large: the limit is {max_bytes // 1024} KB.")


def base64_length(max_bytes: int) -> int:
    """Longest base64 text a photo of max_bytes may take (4 characters per 3 bytes, line breaks)."""
    return (max_bytes + 2) // 3 * 4 * 78 // 76 + 4


def check_content_length(meta: dict[str, Any], *, max_bytes: int) -> None:
    """Refuse a request whose declared body is larger than a photo may be, before it is read.

    A JSON body carries the photo as base64, a third larger than the photo itself.
    """
    try:
        length = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError as exc:
        raise QueryImageError("bad_request", "The Content-Length header is not a number.") from exc
    is_json = str(meta.get("CONTENT_TYPE", "")).lower().startswith("application/json")
    allowed = (base64_length(max_bytes) if is_json else max_bytes) + FORM_OVERHEAD_BYTES
    if length > allowed:
        raise _too_large(max_bytes)


def read_upload(file: IO[bytes], *, max_bytes: int) -> bytes:
    """Read an uploaded file in chunks, stopping as soon as it passes `max_bytes`."""
    try:
        data = read_capped(file, max_bytes=max_bytes)
    except FileTooLarge as exc:
        raise _too_large(max_bytes) from exc
    if not data:
        raise QueryImageError("empty", "The photo is empty (0 bytes).")
    return data


def decode_base64_image(value: str, *, max_bytes: int) -> bytes:
    """Decode a base64 photo (optionally a data: URL), refusing an oversized string before decoding."""
    value = _DATA_URL_PREFIX.sub("", value.strip(), count=1)
    if len(value) > base64_length(max_bytes):
        raise _too_large(max_bytes)
    try:
        data = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise QueryImageError("bad_base64", "The image is not valid base64.") from exc
    if not data:
        raise QueryImageError("empty", "The photo is empty (0 bytes).")
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    return data


def _refuse_polyglot(data: bytes) -> None:
    try:
        refuse_polyglot(data)
    except PolyglotImage as exc:
        raise QueryImageError("polyglot", str(exc)) from exc


def _open_header(data: bytes, max_pixels: int) -> Image.Image:
    """Identify the format from the bytes and check the pixel count without decoding pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=QUERY_IMAGE_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_many_pixels(max_pixels) from exc
    except (Image.UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        message = "The file is not a picture in a supported format (JPEG, PNG, WebP, GIF, BMP, TIFF)."
        raise QueryImageError("not_an_image", message) from exc
    width, height = image.size
    if width * height > max_pixels:
        raise _too_many_pixels(max_pixels)
    return image


def _too_many_pixels(max_pixels: int) -> QueryImageError:
    return QueryImageError(
        "too_many_pixels", f"The picture has too many pixels: the limit is {max_pixels / 1e6:.0f} megapixels."
    )


def decode_query_image(
    data: bytes, *, max_pixels: int | None = None, crop: object = None, detail_size: int | None = None
) -> Image.Image:
    """Decode a query photo to an RGB PIL image, or raise QueryImageError saying what is wrong.

    Without a crop the photo is decoded exactly as catalog photos are (large JPEGs in draft mode), so
    the very same photo scores 1.0; with a crop the full resolution is kept for the cropped region.
    ``detail_size`` decodes at least that many pixels on the shorter side (finding objects and
    cropping them needs detail a whole-photo embedding does not).
    """
    max_pixels = max_pixels or settings.SEARCH_QUERY_MAX_PIXELS
    if not data:
        raise QueryImageError("empty", "The photo is empty (0 bytes).")
    if len(data) > max_query_bytes():
        raise _too_large(max_query_bytes())
    _open_header(data, max_pixels)
    _refuse_polyglot(data)
    try:
        if crop:
            draft, margin = None, DRAFT_MARGIN
        elif detail_size:
            # At least ``detail_size`` on the shorter side and no more: a 12-MP phone JPEG decodes at half
            # scale (1512 px) rather than in full for object finding (docs/benchmarks.md, "phone photo").
            draft, margin = detail_size, 1.0
        else:
            draft, margin = settings.SEARCH_RESIZE, DRAFT_MARGIN
        return load_image(
            data, max_pixels=max_pixels, formats=QUERY_IMAGE_FORMATS, draft_size=draft, draft_margin=margin
        )
    except ImageTooLarge as exc:
        raise _too_many_pixels(max_pixels) from exc
    except (ImageDecodeError, OSError, SyntaxError, ValueError) as exc:
        # The header was a valid picture (checked above), so the pixel data is what is broken.
        raise QueryImageError("truncated", "The picture is truncated or damaged and cannot be read.") from exc


def parse_crop(value: Any) -> Crop | None:
    """Parse a crop box given as "x,y,w,h" or {"x","y","w","h"}, in fractions of the image.

    Returns None for an empty value; raises ValueError with a message for anything else invalid.
    """
    if value is None or value == "" or value == {}:
        return None
    if isinstance(value, dict):
        missing = [key for key in ("x", "y", "w", "h") if key not in value]
        if missing:
            raise ValueError(f"crop is missing {', '.join(missing)}.")
        parts = [value[key] for key in ("x", "y", "w", "h")]
    elif isinstance(value, str):
        parts = [part.strip() for part in value.split(",")]
    elif isinstance(value, list | tuple):
        parts = list(value)
    else:
        raise ValueError('crop must be "x,y,w,h" or an object with x, y, w and h.')
    if len(parts) != 4:
        raise ValueError('crop must have four numbers: "x,y,w,h".')
    try:
        x, y, w, h = (float(part) for part in parts)
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: a JSON integer of 400 digits
        raise ValueError("crop values must be numbers between 0 and 1.") from exc
    if not all(0.0 <= v <= 1.0 for v in (x, y, w, h)) or w <= 0 or h <= 0:
        raise ValueError("crop values must be fractions between 0 and 1 with a width and height above 0.")
    if x + w > 1.0 + 1e-9 or y + h > 1.0 + 1e-9:
        raise ValueError("crop box must lie inside the image (x + w <= 1 and y + h <= 1).")
    return (x, y, w, h)
