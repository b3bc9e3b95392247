"""Uploaded media served by Django itself, for the single-machine shape (`make serve`, gunicorn).

WhiteNoise serves only static files, which are known when the process starts; media changes at run
time. This view streams a file from the default storage (FileSystemStorage by default), with
conditional GET and cache headers. Product photos and thumbnails have content-addressed names, so
browsers may cache them; every other folder (flagged uploads, import files, kept query photos) is
served to staff only, and is a 404 for anyone else. Deployments with media on object storage or a
CDN, or behind a web server that serves MEDIA_ROOT, set SERVE_MEDIA=0 and this is not mounted.
"""

from __future__ import annotations

import posixpath

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponseBase
from django.urls import URLPattern, re_path
from django.utils.cache import get_conditional_response
from django.utils.http import http_date
from django.views.decorators.http import require_safe

# Uploads are checked to be pictures, but a file is never trusted to be one: even opened directly,
# it can run no script and load nothing.
MEDIA_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"


def media_urlpatterns() -> list[URLPattern]:
    """The media URL when SERVE_MEDIA is on and MEDIA_URL is a path on this site (not a CDN URL)."""
    prefix = settings.MEDIA_URL.lstrip("/")
    if not settings.SERVE_MEDIA or not prefix or "://" in prefix or prefix.startswith("/"):
        return []
    return [re_path(rf"^{prefix}(?P<path>.+)$", media_serve, name="media")]


@require_safe
def media_serve(request: HttpRequest, path: str) -> HttpResponseBase:
    name = _storage_name(path)
    if not _may_read(request, name):
        raise Http404("No such file.")
    try:
        if not default_storage.exists(name):
            raise Http404("No such file.")
        modified = _modified_timestamp(name)
        not_modified = get_conditional_response(request, last_modified=modified)
        if not_modified is not None:
            response = not_modified
        else:
            response = FileResponse(default_storage.open(name, "rb"))
    except (SuspiciousFileOperation, IsADirectoryError, FileNotFoundError, NotADirectoryError) as exc:
        raise Http404("No such file.") from exc
    if _is_public(name):
        response["Cache-Control"] = f"public, max-age={settings.SERVE_MEDIA_MAX_AGE}"
    else:
        response["Cache-Control"] = "private, no-store"
    if modified is not None:
        response["Last-Modified"] = http_date(modified)
    response["Content-Security-Policy"] = MEDIA_CSP
    return response


def _storage_name(path: str) -> str:
    """The storage name for a URL path, or a 404 for anything that is not a plain relative name:
    no `..`, no absolute path, no backslash or NUL, no hidden file or folder."""
    if "\x00" in path or "\\" in path or path.startswith("/") or posixpath.normpath(path) != path:
        raise Http404("No such file.")
    if any(part in ("", ".", "..") or part.startswith(".") for part in path.split("/")):
        raise Http404("No such file.")
    return path


def _is_public(name: str) -> bool:
    return any(name.startswith(prefix) for prefix in settings.SERVE_MEDIA_PUBLIC_PREFIXES)


def _may_read(request: HttpRequest, name: str) -> bool:
    if _is_public(name):
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)


def _modified_timestamp(name: str) -> int | None:
    try:
        return int(default_storage.get_modified_time(name).timestamp())
    except (NotImplementedError, OSError):
        return None  # a backend that does not know: no conditional GET, the file is still served
