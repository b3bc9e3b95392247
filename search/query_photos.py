"""Optional keeping of shoppers' query photos (privacy: off by default).

With SEARCH_KEEP_QUERY_PHOTOS_DAYS = 0 (the default) nothing is written. With N > 0 each query photo
is kept for N days under MEDIA_ROOT/queries/<YYYY-MM-DD>/, e.g. to review search quality. What is
kept is the decoded picture re-encoded as JPEG, never the uploaded bytes: EXIF (GPS position, camera
serial) is dropped and nothing else hidden in the upload survives. `manage.py purge_query_photos`
(run daily from cron or Celery beat) deletes photos older than N days.
"""

from __future__ import annotations

import shutil
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from PIL import Image

QUERY_DIR_NAME = "queries"


def query_photos_root() -> Path:
    return Path(settings.MEDIA_ROOT) / QUERY_DIR_NAME


def query_photo_keep(picture: Image.Image, *, now: datetime | None = None) -> Path | None:
    """Store the query picture when retention is on; returns its path, or None when not kept."""
    if settings.SEARCH_KEEP_QUERY_PHOTOS_DAYS <= 0:
        return None
    day = (now or timezone.now()).date().isoformat()
    folder = query_photos_root() / day
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.jpg"
    picture.convert("RGB").save(path, format="JPEG", quality=85)
    return path


def query_photos_purge(*, now: datetime | None = None, days: int | None = None) -> int:
    """Delete day folders older than the retention period (all of them when retention is 0).

    Returns the number of photos deleted.
    """
    days = settings.SEARCH_KEEP_QUERY_PHOTOS_DAYS if days is None else days
    root = query_photos_root()
    if not root.is_dir():
        return 0
    oldest_kept = (now or timezone.now()).date() - timedelta(days=max(days, 0))
    deleted = 0
    for folder in root.iterdir():
        folder_day = _folder_date(folder)
        if folder_day is None or (days > 0 and folder_day > oldest_kept):
            continue
        deleted += sum(1 for item in folder.iterdir() if item.is_file())
        shutil.rmtree(folder)
    return deleted


def _folder_date(folder: Path) -> date | None:
    if not folder.is_dir():
        return None
    try:
        return date.fromisoformat(folder.name)
    except ValueError:
        return None  # not one of ours: left alone
