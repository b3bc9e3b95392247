"""Checks on picture bytes that every way in shares (catalog uploads, imports, shopper queries).

Django-free on purpose: the catalog and the search side both import it, and it is tested alone.
"""

from __future__ import annotations

import io
import re
import zipfile

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
