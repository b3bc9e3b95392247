"""Product admin: list with thumbnails, filters, actions, photos inline; writes through the product services.

search.admin extends it (index status, similar products, photo search) and registers it in its place."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest
from django.urls import URLPattern, path
from django.utils.html import format_html

from catalog.models import Category, Product, ProductImage
from catalog.selectors import category_label
from catalog.services import (
    parse_currency,
    product_create,
    product_delete,
    product_set_active,
    product_update,
)
from catalog.thumbnails import thumbnail_url

from . import views
from .images import ProductImageInline, image_formset_save

LIST_THUMB_SIZE = 128  # shown at 64 px: sharp on high-density screens, still a small file
# The form's fields that product_create / product_update take.
PRODUCT_FIELDS = ("sku", "name", "slug", "category", "price", "currency", "is_active", "description")


class CategoryChoiceField(forms.ModelChoiceField):
    """Categories by their path ("Garden > Tools"), so two "Tools" under different parents differ."""

    def label_from_instance(self, category: Category) -> str:
        return category_label(category)


class ProductAdminForm(forms.ModelForm):
    category = CategoryChoiceField(queryset=Category.objects.select_related("parent__parent"), required=False)

    class Meta:
        model = Product
        fields = PRODUCT_FIELDS

    def clean_currency(self) -> str:
        try:
            return parse_currency(self.cleaned_data["currency"])
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from exc


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    form = ProductAdminForm
    list_display = ("thumbnail", "sku", "name", "price_display", "category", "is_active")
    list_display_links = ("thumbnail", "sku", "name")
    list_filter = ("category", "is_active")
    list_select_related = ("category",)
    search_fields = ("sku", "name")
    list_per_page = 50
    prepopulated_fields = {"slug": ("name",)}
    fields = PRODUCT_FIELDS
    inlines = (ProductImageInline,)
    actions = ("activate", "deactivate")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Product]:
        images = ProductImage.objects.order_by("display_order", "id")
        return super().get_queryset(request).prefetch_related(Prefetch("images", queryset=images))

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

    # --- writes go through the product services, as in the API and the import ----------------------

    def save_model(self, request: HttpRequest, obj: Product, form, change: bool) -> None:
        values = {name: form.cleaned_data[name] for name in PRODUCT_FIELDS if name in form.cleaned_data}
        if change:
            changed = {name: values[name] for name in form.changed_data if name in values}
            product_update(product=Product.objects.get(pk=obj.pk), **changed)
        else:
            obj.pk = product_create(**values).pk
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: Product) -> None:
        product_delete(product=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        for product in queryset:
            product_delete(product=product)

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
