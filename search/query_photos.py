"""Optional keeping of shoppers' query photos (privacy: off by default).

With SEARCH_KEEP_QUERY_PHOTOS_DAYS = 0 (the default) nothing is written. With N > 0 each query photo
is kept for N days in the media storage under queries/<YYYY-MM-DD>/<sha256>.jpg, e.g. to review search
quality or to keep the photo of a search a shopper gave feedback on (search.services.feedback). What
is kept is the decoded picture re-encoded as JPEG, never the uploaded bytes: EXIF (GPS position,
camera serial) is dropped and nothing else hidden in the upload survives. The name is the sha256 of
the uploaded bytes, so the same photo searched again that day is stored once.
`manage.py purge_query_photos` (run daily from cron or Celery beat) deletes photos older than N days.
Everything goes through Django's storage API, so object storage works as well as MEDIA_ROOT.
"""

from __future__ import annotations

import io
import os
from datetime import date, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image

QUERY_DIR_NAME = "queries"


def query_photos_root() -> Path:
    """Where the default FileSystemStorage keeps them (tests and operators look there)."""
    return Path(settings.MEDIA_ROOT) / QUERY_DIR_NAME


def query_photo_name(photo_sha256: str, day: date) -> str:
    """The storage name of a query photo kept on `day`."""
    return f"{QUERY_DIR_NAME}/{day.isoformat()}/{photo_sha256}.jpg"


def query_photo_keep(picture: Image.Image, *, photo_sha256: str, now: datetime | None = None) -> str:
    """Store the query picture when retention is on; returns its storage name, or "" when not kept."""
    if settings.SEARCH_KEEP_QUERY_PHOTOS_DAYS <= 0:
        return ""
    name = query_photo_name(photo_sha256, (now or timezone.now()).date())
    if default_storage.exists(name):
        return name  # the same photo, searched again today (another crop, another filter)
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="JPEG", quality=85)
    default_storage.save(name, ContentFile(buffer.getvalue()))
    return name


def query_photos_purge(*, now: datetime | None = None, days: int | None = None) -> int:
    """Delete day folders older than the retention period (all of them when retention is 0).

    Returns the number of photos deleted.
    """
    days = settings.SEARCH_KEEP_QUERY_PHOTOS_DAYS if days is None else days
    try:
        folders, _files = default_storage.listdir(QUERY_DIR_NAME)
    except FileNotFoundError:
        return 0
    oldest_kept = (now or timezone.now()).date() - timedelta(days=max(days, 0))
    deleted = 0
    for folder in folders:
        folder_day = _folder_date(folder)
        if folder_day is None or (days > 0 and folder_day > oldest_kept):
            continue
        prefix = f"{QUERY_DIR_NAME}/{folder}"
        for name in default_storage.listdir(prefix)[1]:
            default_storage.delete(f"{prefix}/{name}")
            deleted += 1
        _remove_empty_folder(prefix)
    return deleted


def _folder_date(name: str) -> date | None:
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None  # not one of ours: left alone


def _remove_empty_folder(name: str) -> None:
    # The storage API has no folders to delete; on a file system the emptied one is removed, elsewhere
    # (object storage) there is nothing left once its files are gone.
    try:
        os.rmdir(default_storage.path(name))
    except (NotImplementedError, OSError):
        pass
