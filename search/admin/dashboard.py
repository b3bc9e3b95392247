"""Search admin: the index dashboard (model, counts, builds, live build progress, Rebuild now) and the
build and embedding history. The dashboard lives under the IndexBuild admin's URLs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from search.models import ImageEmbedding, IndexBuild

if TYPE_CHECKING:
    from search.services import BuildSummary, IndexStatus


def _status() -> IndexStatus:
    from search.services import index_status  # loads the model on first use

    return index_status()


def dashboard_state(status: IndexStatus) -> dict:
    """The part of the dashboard that changes while a build runs (polled by the page)."""
    from search.services import index_state_label

    running = status.running_build
    queued = IndexBuild.objects.filter(status=IndexBuild.Status.QUEUED).exists()
    return {
        "busy": running is not None or queued,
        "queued": queued,
        "state": status.state,
        "state_label": index_state_label(status),
        "products": status.products,
        "images": status.images,
        "embedded": status.embedded,
        "pending": status.pending,
        "fresh": status.fresh,
        "failed": status.failed,
        "last_error": status.last_error,
        "running": None if running is None else _running(running),
        "current_version": status.current_build.version if status.current_build else "",
    }


def _running(build: BuildSummary) -> dict:
    percent = round(100 * build.done / build.total) if build.total else 0
    return {
        "id": build.id,
        "total": build.total,
        "done": build.done,
        "failed": build.failed,
        "percent": percent,
    }


@admin.register(IndexBuild)
class IndexBuildAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "requested_at", "finished_at", "vectors", "dim", "size", "short_error")
    list_filter = ("status",)
    readonly_fields = [field.name for field in IndexBuild._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        own = [
            path("dashboard/", wrap(self.dashboard_view), name="search_dashboard"),
            path("dashboard/status/", wrap(self.dashboard_status_view), name="search_dashboard_status"),
            path("dashboard/rebuild/", wrap(self.rebuild_view), name="search_dashboard_rebuild"),
        ]
        return own + super().get_urls()

    @admin.display(description="Size")
    def size(self, build: IndexBuild) -> str:
        return f"{build.size_bytes / 1_048_576:.1f} MB" if build.size_bytes else "—"

    @admin.display(description="Error")
    def short_error(self, build: IndexBuild) -> str:
        return build.error[:120]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        from search.services import index_state_explained

        self._require_view(request)
        status = _status()
        context = {
            **self.admin_site.each_context(request),
            "title": "Search index",
            "opts": self.model._meta,
            "status": status,
            "params": sorted((status.current_build.params or {}).items()) if status.current_build else [],
            "live": dashboard_state(status),
            "explained": index_state_explained(status),
            "can_rebuild": request.user.has_perm("search.add_indexbuild"),
        }
        return render(request, "admin/search/dashboard.html", context)

    def dashboard_status_view(self, request: HttpRequest) -> JsonResponse:
        self._require_view(request)
        return JsonResponse(dashboard_state(_status()))

    def rebuild_view(self, request: HttpRequest) -> HttpResponse:
        from search.services import index_build_request

        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("search.add_indexbuild"):
            raise PermissionDenied
        build = index_build_request()
        messages.success(request, f"Rebuild queued (build #{build.pk}).")
        return HttpResponseRedirect(reverse("admin:search_dashboard"))

    def _require_view(self, request: HttpRequest) -> None:
        if not self.has_view_permission(request):
            raise PermissionDenied


@admin.register(ImageEmbedding)
class ImageEmbeddingAdmin(admin.ModelAdmin):
    """Which photos failed and why (the dashboard shows the latest few)."""

    list_display = (
        "image_id",
        "product_link",
        "status",
        "short_fingerprint",
        "attempts",
        "updated_at",
        "error",
    )
    list_filter = ("status", "fingerprint")
    list_select_related = ("image__product",)
    search_fields = ("image__product__sku", "error")
    exclude = ("vector",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="Product")
    def product_link(self, embedding: ImageEmbedding) -> str:
        product = embedding.image.product
        url = reverse("admin:catalog_product_change", args=[product.pk])
        return format_html('<a href="{}">{}</a>', url, product.sku)

    @admin.display(description="Model")
    def short_fingerprint(self, embedding: ImageEmbedding) -> str:
        return embedding.fingerprint[:24]


__all__ = ["ImageEmbeddingAdmin", "IndexBuildAdmin", "dashboard_state"]
