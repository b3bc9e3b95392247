"""Product admin: list with thumbnails and index status, filters, actions, similar-products panel."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from catalog.models import Product, ProductImage
from catalog.services import product_set_active
from catalog.thumbnails import thumbnail_url

from . import views
from .images import ProductImageInline, image_formset_save

LIST_THUMB_SIZE = 128  # shown at 64 px: sharp on high-density screens, still a small file
SIMILAR_COUNT = 8
STATUS_LABELS = {
    "indexed": "In the index",
    "embedded": "Embedded, not in the index yet",
    "pending": "Waiting to be embedded",
    "failed": "Embedding failed",
    "no-photo": "No photo",
}


def product_statuses(products) -> dict:
    from search.services import product_index_statuses  # loads the model on first use

    return product_index_statuses(products)


class ProductChangeList(ChangeList):
    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # One call for the whole page (no per-row queries); each row carries its status.
        statuses = product_statuses(self.result_list)
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
        statuses = product_statuses(queryset.values_list("pk", flat=True))
        return queryset.filter(pk__in=[pk for pk, status in statuses.items() if status.state == self.value()])


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("thumbnail", "sku", "name", "price_display", "category", "is_active", "index_state")
    list_display_links = ("thumbnail", "sku", "name")
    list_filter = ("category", IndexStatusFilter, "is_active")
    list_select_related = ("category",)
    search_fields = ("sku", "name")
    list_per_page = 50
    prepopulated_fields = {"slug": ("name",)}
    fields = ("sku", "name", "slug", "category", "price", "currency", "is_active", "description")
    inlines = (ProductImageInline,)
    actions = ("activate", "deactivate", "reembed", "search_with_photo")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Product]:
        images = ProductImage.objects.order_by("display_order", "id")
        return super().get_queryset(request).prefetch_related(Prefetch("images", queryset=images))

    def get_changelist(self, request: HttpRequest, **kwargs) -> type[ChangeList]:
        return ProductChangeList

    def get_urls(self) -> list[URLPattern]:
        own = [
            path("import/", self.admin_site.admin_view(views.import_start), name="catalog_product_import"),
            path(
                "import/<int:job_id>/",
                self.admin_site.admin_view(views.import_job),
                name="catalog_importjob_page",
            ),
            path(
                "import/<int:job_id>/status/",
                self.admin_site.admin_view(views.import_job_status),
                name="catalog_importjob_status",
            ),
            path(
                "duplicates/", self.admin_site.admin_view(views.duplicates), name="catalog_product_duplicates"
            ),
            path(
                "<int:pk>/photo-search/",
                self.admin_site.admin_view(views.photo_search),
                name="catalog_product_photo_search",
            ),
        ]
        return own + super().get_urls()

    # --- columns --------------------------------------------------------------------------------

    @admin.display(description="Photo")
    def thumbnail(self, product: Product) -> str:
        image = product.primary_image
        if image is None:
            return format_html('<span class="admin-extra-nophoto">{}</span>', "no photo")
        return format_html(
            '<img src="{}" class="admin-extra-thumb" alt="{}" loading="lazy">',
            thumbnail_url(image, LIST_THUMB_SIZE),
            product.name,
        )

    @admin.display(description="Price", ordering="price")
    def price_display(self, product: Product) -> str:
        return f"{product.price} {product.currency}"

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
            if status.state == "failed"
            else "",
        )

    # --- change page ----------------------------------------------------------------------------

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        extra_context = {**(extra_context or {}), **self._similar_context(object_id)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _similar_context(self, object_id: str) -> dict:
        from search.services import SearchUnavailable, similar_products

        product = Product.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        if product is None:
            return {}
        try:
            hits = similar_products(product, k=SIMILAR_COUNT).hits
        except SearchUnavailable as exc:
            return {"similar_error": str(exc)}
        return {"similar": views.hit_cards(hits)}

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        if formset.model is ProductImage:
            image_formset_save(request, formset)
        else:
            super().save_formset(request, form, formset, change)

    # --- actions --------------------------------------------------------------------------------

    @admin.action(description="Activate selected products")
    def activate(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        changed = product_set_active(products=queryset, active=True)
        self.message_user(request, f"{changed} product(s) activated.", messages.SUCCESS)

    @admin.action(description="Deactivate selected products (hide from search)")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        changed = product_set_active(products=queryset, active=False)
        self.message_user(request, f"{changed} product(s) deactivated.", messages.SUCCESS)

    @admin.action(description="Re-embed photos of selected products")
    def reembed(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        from search.services import images_reembed_request

        image_ids = list(ProductImage.objects.filter(product__in=queryset).values_list("pk", flat=True))
        if not image_ids:
            self.message_user(request, "The selected products have no photos.", messages.WARNING)
            return
        retried = images_reembed_request(image_ids=image_ids)
        note = f"; {retried} failed one(s) will be retried" if retried else ""
        message = f"Embedding queued for {len(image_ids)} photo(s) (up-to-date vectors are kept{note})."
        self.message_user(request, message, messages.SUCCESS)

    @admin.action(description="Search with this product's photo")
    def search_with_photo(self, request: HttpRequest, queryset: QuerySet[Product]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one product to search with its photo.", messages.ERROR)
            return None
        url = reverse("admin:catalog_product_photo_search", args=[queryset.get().pk])
        return HttpResponseRedirect(url)
