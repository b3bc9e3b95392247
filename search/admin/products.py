"""What search adds to the catalog's product admin: the index status column and filter, the visually
similar products panel, "Search with this photo" and the "Re-embed" action.

Search builds on the catalog, so it extends catalog's ProductAdmin here and registers the extended
admin in its place; the catalog admin knows nothing of search.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from catalog.admin import ProductAdmin
from catalog.admin.views import PhotoCard, admin_context, photo_card, require_permission
from catalog.models import Product, ProductImage
from search import services
from search.services.product_status import ProductIndexState

SIMILAR_COUNT = 8
PHOTO_SEARCH_RESULTS = 24
STATUS_LABELS = {
    ProductIndexState.INDEXED: "In the index",
    ProductIndexState.EMBEDDED: "Embedded, not in the index yet",
    ProductIndexState.PENDING: "Waiting to be embedded",
    ProductIndexState.FAILED: "Embedding failed",
    ProductIndexState.NO_PHOTO: "No photo",
}


def hit_cards(hits: Iterable[services.Hit]) -> list[PhotoCard]:
    return [photo_card(hit.image, hit.score) for hit in hits]


class ProductChangeList(ChangeList):
    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # One call for the whole page (no per-row queries); each row carries its status.
        statuses = services.product_index_statuses(self.result_list)
        for product in self.result_list:
            product.index_status = statuses.get(product.pk)


class IndexStatusFilter(admin.SimpleListFilter):
    title = "index status"
    parameter_name = "index_status"

    def lookups(self, request: HttpRequest, model_admin) -> list[tuple[str, str]]:
        return list(STATUS_LABELS.items())

    def queryset(self, request: HttpRequest, queryset: QuerySet[Product]) -> QuerySet[Product] | None:
        if self.value() not in STATUS_LABELS:
            return None
        # The status is worked out by the search service (embeddings + the serving index files), so the
        # filter asks it for the filtered products' ids: one call, whatever the page size.
        statuses = services.product_index_statuses(queryset.values_list("pk", flat=True))
        return queryset.filter(pk__in=[pk for pk, status in statuses.items() if status.state == self.value()])


class SearchProductAdmin(ProductAdmin):
    list_display = (*ProductAdmin.list_display, "index_state")
    list_filter = (ProductAdmin.list_filter[0], IndexStatusFilter, *ProductAdmin.list_filter[1:])
    actions = (*ProductAdmin.actions, "reembed", "search_with_photo")
    change_form_template = "admin/search/product/change_form.html"

    def get_changelist(self, request: HttpRequest, **kwargs) -> type[ChangeList]:
        return ProductChangeList

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:pk>/photo-search/",
                self.admin_site.admin_view(self.photo_search_view),
                name="catalog_product_photo_search",
            ),
        ]
        return own + super().get_urls()

    @admin.display(description="Index status")
    def index_state(self, product: Product) -> str:
        status = getattr(product, "index_status", None)
        if status is None:
            return "—"
        return format_html(
            '<span class="admin-extra-status admin-extra-status--{}" title="{}">{}</span>{}',
            status.state,
            status.reason,
            status.state,
            format_html('<div class="admin-extra-reason">{}</div>', status.reason)
            if status.state == ProductIndexState.FAILED
            else "",
        )

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        extra_context = {**(extra_context or {}), **self._similar_context(object_id)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _similar_context(self, object_id: str) -> dict:
        product = Product.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        if product is None:
            return {}
        try:
            hits = services.similar_products(product, k=SIMILAR_COUNT).hits
        except services.SearchUnavailable as exc:
            return {"similar_error": str(exc)}
        return {"similar": hit_cards(hits)}

    def photo_search_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """What a shopper would see for this product's primary photo (inactive products are left out)."""
        require_permission(request, "catalog.view_product")
        product = get_object_or_404(Product.objects.prefetch_related("images"), pk=pk)
        image = product.primary_image
        context = admin_context(
            request, f"Search with the photo of {product.name}", product=product, hits=[], error=""
        )
        if image is None:
            context["error"] = "This product has no photo to search with."
        else:
            context["query"] = photo_card(image)
            try:
                with image.image.open("rb") as handle:
                    source = services.PhotoSource(data=handle.read())
                context["hits"] = hit_cards(services.photo_search(source, k=PHOTO_SEARCH_RESULTS).hits)
            except (services.SearchUnavailable, ValueError, OSError) as exc:
                context["error"] = f"The search could not run: {exc}"
        return render(request, "admin/search/product/photo_search.html", context)

    @admin.action(description="Re-embed photos of selected products")
    def reembed(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        image_ids = list(ProductImage.objects.filter(product__in=queryset).values_list("pk", flat=True))
        if not image_ids:
            self.message_user(request, "The selected products have no photos.", messages.WARNING)
            return
        retried = services.images_reembed_request(image_ids=image_ids)
        note = f"; {retried} failed one(s) will be retried" if retried else ""
        message = f"Embedding queued for {len(image_ids)} photo(s) (up-to-date vectors are kept{note})."
        self.message_user(request, message, messages.SUCCESS)

    @admin.action(description="Search with this product's photo")
    def search_with_photo(self, request: HttpRequest, queryset: QuerySet[Product]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one product to search with its photo.", messages.ERROR)
            return None
        return HttpResponseRedirect(reverse("admin:catalog_product_photo_search", args=[queryset.get().pk]))


admin.site.unregister(Product)
admin.site.register(Product, SearchProductAdmin)
