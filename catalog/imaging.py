"""Reading pictures, shared by every way in: catalog uploads and imports, the embedding engine, shoppers'
query photos. Decode any photo into an upright RGB PIL image, and refuse files that carry a second payload.

The pixel limit is checked from the header, before any pixel is decoded, so a decompression bomb
costs nothing. Formats are decided by the decoder (Pillow sniffs the bytes), never by file names.

Django-free on purpose: the catalog imports it, and so does search's engine package (search/embedding),
which must not depend on Django; data flows catalog -> search, never back.
"""

from __future__ import annotations

import functools
import io
import math
import os
import re
import struct
import zipfile
from collections.abc import Callable, Collection
from pathlib import Path
from typing import IO, BinaryIO

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

ImageSource = bytes | str | Path | BinaryIO

# Modes with an alpha channel: composited on white (product photos sit on white pages).
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "PA"}
# 16/32-bit integer greyscale: Pillow's convert("RGB") clips at 255, so these are scaled by hand.
_WIDE_INT_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}
# What a decoder raises on broken input (UnidentifiedImageError is an OSError).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError, struct.error)


# DCT scaling is sharper than an antialiased resize: a draft landing right on the resize size moved
# vectors measurably (cosine ~0.94 to the full decode). With 1.5x headroom they match (>= 0.999)
# and a 4000x3000 JPEG still decodes ~6x faster.
DRAFT_MARGIN = 1.5


class ImageDecodeError(ValueError):
    """The file is not an image we can read (empty, truncated, text, unsupported format)."""


class ImageTooLarge(ValueError):
    """The image has more pixels than allowed; refused before decoding."""


def load_image(
    source: ImageSource,
    *,
    max_pixels: int,
    draft_size: int | None = None,
    draft_margin: float = DRAFT_MARGIN,
    formats: Collection[str] | None = None,
) -> Image.Image:
    """Decode ``source`` into an RGB image: EXIF-upright, first frame, alpha composited on white.

    ``draft_size`` is the size the picture is resized to next (the preprocessing resize): a JPEG
    then decodes at a reduced scale (DCT scaling) keeping both sides >= ``draft_margin`` x that
    (``DRAFT_MARGIN``), which makes large photos several times faster without changing their vectors.
    ``formats`` (Pillow names, e.g. {"JPEG", "PNG"}) refuses other formats. The returned image's
    ``format`` attribute is the decoded source format. Raises ``ImageTooLarge`` or
    ``ImageDecodeError`` (both ``ValueError``) with a message fit for the user.
    """
    stream, restore = _open_stream(source)
    try:
        image = _open_checked(stream, max_pixels=max_pixels, formats=formats)
        source_format = image.format
        if draft_size and source_format == "JPEG":
            side = math.ceil(draft_size * draft_margin)
            image.draft("RGB", (side, side))
        try:
            image.load()
            # In place: the copy exif_transpose otherwise returns costs ~0.7 ms per 1 Mpx photo.
            ImageOps.exif_transpose(image, in_place=True)
        except _DECODE_ERRORS as exc:
            raise ImageDecodeError(f"The image could not be decoded ({_reason(exc)}).") from exc
        rgb = to_rgb(image)
        rgb.format = source_format
        return rgb
    finally:
        restore()


def _open_stream(source: ImageSource) -> tuple[BinaryIO, Callable[[], object]]:
    """A seekable binary stream for ``source`` and a function that rewinds a caller's file."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            source = path.read_bytes()
        except OSError as exc:
            raise ImageDecodeError(f"The file {path.name} could not be read ({exc.strerror}).") from exc
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ImageDecodeError("The file is empty.")
        return io.BytesIO(source), lambda: None
    if not getattr(source, "seekable", lambda: True)():
        return _open_stream(source.read())
    # A caller's file (e.g. a Django upload): read from where it stands, then put it back.
    start = source.tell()
    end = source.seek(0, os.SEEK_END)
    source.seek(start)
    if end == start:
        raise ImageDecodeError("The file is empty.")
    return source, lambda: source.seek(start)


def _open_checked(stream: BinaryIO, *, max_pixels: int, formats: Collection[str] | None) -> Image.Image:
    """Read only the header; refuse unknown formats and too many pixels before decoding."""
    try:
        image = Image.open(stream)
    # Pillow's own bomb guard (warning at ~89M pixels, error at twice that) fires inside open();
    # the warning is caught too in case warnings are turned into errors.
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"The image has too many pixels (the limit is {max_pixels:,}).") from exc
    except UnidentifiedImageError as exc:
        raise ImageDecodeError("The file is not an image in a supported format.") from exc
    except _DECODE_ERRORS as exc:
        raise ImageDecodeError(f"The image could not be read ({_reason(exc)}).") from exc
    if formats is not None and image.format not in {f.upper() for f in formats}:
        allowed = ", ".join(sorted(formats))
        raise ImageDecodeError(f"Images in {image.format} format are not accepted (allowed: {allowed}).")
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageDecodeError("The image has no pixels.")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"The image is {width}x{height} = {width * height:,} pixels; the limit is {max_pixels:,}."
        )
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)  # animations: the first frame is the picture
    return image


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, OSError) and "truncated" in text:
        return "the file is truncated"
    return text or type(exc).__name__


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB, with alpha composited on white and 16-bit values scaled."""
    if image.mode == "La":  # premultiplied: Pillow converts it to RGBA only via LA
        image = image.convert("LA")
    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "LAB":  # Pillow's plain convert reads L*a*b* as if it were RGB
        return ImageCms.applyTransform(image, _lab_to_srgb())
    if mode == "P" and "transparency" in image.info or mode in _ALPHA_MODES:
        return _composite_on_white(image.convert("RGBA"))
    if mode in _WIDE_INT_MODES:
        return _grey_array_to_rgb(np.asarray(image, dtype=np.float64) / 257.0)
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        # Float images are conventionally 0..1; anything else is taken as 0..255 already.
        scale = 255.0 if np.nanmax(values, initial=0.0) <= 1.0 else 1.0
        return _grey_array_to_rgb(np.nan_to_num(values) * scale)
    try:
        return image.convert("RGB")
    except ValueError as exc:
        raise ImageDecodeError(f"Images in colour mode {mode} are not supported.") from exc


@functools.cache
def _lab_to_srgb() -> ImageCms.ImageCmsTransform:
    return ImageCms.buildTransform(
        ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB"
    )


def _composite_on_white(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _grey_array_to_rgb(values: np.ndarray) -> Image.Image:
    grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")


# --- second payloads ---------------------------------------------------------------------------
# Markers of content a browser or archive tool would act on; none occurs in a plain photo.
_FOREIGN_MARKERS = re.compile(
    rb"<(?:html|script|body|iframe|svg|object|embed)\b|<!doctype\s+html|<\?php|%PDF-", re.IGNORECASE
)


class PolyglotImage(ValueError):
    """The bytes are a picture AND something else (an archive, HTML, script or PDF)."""


def refuse_polyglot(data: bytes) -> None:
    """Raise PolyglotImage when the bytes carry a second payload besides the picture.

    A picture that is also a ZIP (GIFAR-style) or carries HTML/script could be served back or opened
    by another program as that other type, so such files are never stored or searched with.
    """
    if zipfile.is_zipfile(io.BytesIO(data)) or _FOREIGN_MARKERS.search(data):
        raise PolyglotImage("The file contains something besides a picture (an archive, HTML or script).")


# --- reading with a cap ---------------------------------------------------------------------------

CHUNK_SIZE = 64 * 1024


class FileTooLarge(ValueError):
    """More bytes than allowed; ``size`` is what was seen (the declared size, or the cap + 1)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"{size} bytes, the limit is {limit}")
        self.size, self.limit = size, limit


def read_capped(file: IO[bytes] | bytes, *, max_bytes: int) -> bytes:
    """The file's bytes, read in chunks and stopped as soon as they pass ``max_bytes`` (a declared size
    over the cap is refused before reading). The one byte-capped reader of uploads: the catalog and
    the search side map FileTooLarge and an empty result to their own errors."""
    if isinstance(file, bytes | bytearray):
        if len(file) > max_bytes:
            raise FileTooLarge(len(file), max_bytes)
        return bytes(file)
    declared = getattr(file, "size", None)
    if isinstance(declared, int) and declared > max_bytes:
        raise FileTooLarge(declared, max_bytes)
    if getattr(file, "seekable", lambda: False)():
        file.seek(0)
    buf = bytearray()
    chunks = file.chunks(CHUNK_SIZE) if hasattr(file, "chunks") else iter(lambda: file.read(CHUNK_SIZE), b"")
    for chunk in chunks:
        buf += chunk
        if len(buf) > max_bytes:
            raise FileTooLarge(len(buf), max_bytes)
    return bytes(buf)
