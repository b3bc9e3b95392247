from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

from search import operations
from shop_search.media import media_urlpatterns

urlpatterns = [
    # Uploaded photos and thumbnails (SERVE_MEDIA); static files are WhiteNoise's, in the middleware.
    *media_urlpatterns(),
    # For load balancers and monitoring (docs/operations.md); /metrics is not public by default.
    path("healthz", operations.healthz, name="healthz"),
    path("readyz", operations.readyz, name="readyz"),
    path("metrics", operations.metrics, name="metrics"),
    # Browsers ask for /favicon.ico whatever a page links to: send them to the static file (hashed and
    # cached for a year by WhiteNoise with DEBUG off). Resolved per request: the manifest may be new.
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("favicon.ico")), name="favicon"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("shop_search.api_urls")),
    path("", include("search.urls")),
]

# JSON errors under /api/, Django's HTML pages elsewhere (see search.api.exceptions).
handler400 = "search.api.exceptions.bad_request"
handler403 = "search.api.exceptions.permission_denied"
handler404 = "search.api.exceptions.not_found"
handler500 = "search.api.exceptions.server_error"
