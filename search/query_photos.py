"""Optional keeping of shoppers' query photos (privacy: off by default).

With SEARCH_KEEP_QUERY_PHOTOS_DAYS = 0 (the default) nothing is written. With N > 0 each query photo
is kept for N days as queries/<YYYY-MM-DD>/<random>.jpg in the media storage (STORAGES["default"]: on
disk under MEDIA_ROOT, or in object storage), e.g. to review search quality; only staff may read it.
What is kept is the decoded picture re-encoded as JPEG, never the uploaded bytes: EXIF (GPS position,
camera serial) is dropped and nothing else hidden in the upload survives. `manage.py
purge_query_photos` (run daily from cron or Celery beat) deletes photos older than N days.
"""

from __future__ import annotations

import io
import uuid
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image

QUERY_DIR_NAME = "queries"


def query_photo_keep(picture: Image.Image, *, now: datetime | None = None) -> str | None:
    """Store the query picture when retention is on; returns its storage name, or None when not kept."""
    if settings.SEARCH_KEEP_QUERY_PHOTOS_DAYS <= 0:
        return None
    day = (now or timezone.now()).date().isoformat()
    jpeg = io.BytesIO()
    picture.convert("RGB").save(jpeg, format="JPEG", quality=85)
    name = f"{QUERY_DIR_NAME}/{day}/{uuid.uuid4().hex}.jpg"
    return default_storage.save(name, ContentFile(jpeg.getvalue()))


def query_photos_purge(*, now: datetime | None = None, days: int | None = None) -> int:
    """Delete the photos of days older than the retention period (all of them when retention is 0).

    Returns the number of photos deleted.
    """
    days = settings.SEARCH_KEEP_QUERY_PHOTOS_DAYS if days is None else days
    oldest_kept = (now or timezone.now()).date() - timedelta(days=max(days, 0))
    deleted = 0
    for folder in _listdir(QUERY_DIR_NAME)[0]:
        folder_day = _folder_date(folder)
        if folder_day is None or (days > 0 and folder_day > oldest_kept):
            continue  # not one of ours, or still kept
        path = f"{QUERY_DIR_NAME}/{folder}"
        for name in _listdir(path)[1]:
            default_storage.delete(f"{path}/{name}")
            deleted += 1
        default_storage.delete(path)  # the emptied folder, where the storage has folders
    return deleted


def _listdir(path: str) -> tuple[list[str], list[str]]:
    try:
        return default_storage.listdir(path)
    except FileNotFoundError:
        return [], []


def _folder_date(name: str) -> date | None:
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None
