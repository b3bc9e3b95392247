"""The site's URLs plus uploaded media, so photos show in the live-server browser tests
(the real site serves media from the web server, and Django only does so in debug)."""

import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import re_path
from django.views.static import serve

from shop_search.urls import urlpatterns as site_urlpatterns


def media(request: HttpRequest, path: str) -> HttpResponse:
    # MEDIA_ROOT is per test (tests/conftest.py), so it is read at request time.
    return serve(request, path, document_root=settings.MEDIA_ROOT)


SLOW_MEDIA_SECONDS = 1.5


def slow_media(request: HttpRequest, path: str) -> HttpResponse:
    """The same files, late: a photo that arrives after the page is painted and its script has run."""
    time.sleep(SLOW_MEDIA_SECONDS)
    return media(request, path)


urlpatterns = [
    re_path(r"^media/(?P<path>.*)$", media),
    re_path(r"^slow-media/(?P<path>.*)$", slow_media),
    *site_urlpatterns,
]
