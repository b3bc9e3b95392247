from django.contrib import admin
from django.urls import include, path

from search import operations
from shop_search.media import media_urlpatterns

urlpatterns = [
    # Uploaded photos and thumbnails (SERVE_MEDIA); static files are WhiteNoise's, in the middleware.
    *media_urlpatterns(),
    # For load balancers and monitoring (docs/operations.md); /metrics is not public by default.
    path("healthz", operations.healthz, name="healthz"),
    path("readyz", operations.readyz, name="readyz"),
    path("metrics", operations.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("shop_search.api_urls")),
    path("", include("search.urls")),
]

# JSON errors under /api/, Django's HTML pages elsewhere (see search.api.exceptions).
handler400 = "search.api.exceptions.bad_request"
handler403 = "search.api.exceptions.permission_denied"
handler404 = "search.api.exceptions.not_found"
handler500 = "search.api.exceptions.server_error"
