from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("search.api.urls")),
    path("", include("search.urls")),
]

# JSON errors under /api/, Django's HTML pages elsewhere (see search.api.exceptions).
handler400 = "search.api.exceptions.bad_request"
handler403 = "search.api.exceptions.permission_denied"
handler404 = "search.api.exceptions.not_found"
handler500 = "search.api.exceptions.server_error"

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
