"""Catalog API serializers: input ones validate what clients send, output ones shape what we answer.

Separate and uniquely named so the OpenAPI schema describes requests and responses exactly. The search
API builds on them (a search hit shows a ProductOutputSerializer).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.models import Category, Product, ProductImage

THUMBNAIL_SIZE = 320
PRICE = {"max_digits": 12, "decimal_places": 2, "min_value": Decimal(0)}


def _absolute(request: Any, url: str) -> str:
    return request.build_absolute_uri(url) if request is not None else url


class CatalogFilterInputSerializer(serializers.Serializer):
    """Category (slug, subcategories included) and price range, shared by search and listings."""

    category = serializers.SlugRelatedField(
        slug_field="slug", queryset=Category.objects.all(), required=False, allow_null=True
    )
    min_price = serializers.DecimalField(**PRICE, required=False)
    max_price = serializers.DecimalField(**PRICE, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        low, high = attrs.get("min_price"), attrs.get("max_price")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError({"max_price": ["max_price must not be below min_price."]})
        return attrs


class ProductFilterInputSerializer(CatalogFilterInputSerializer):
    q = serializers.CharField(required=False, allow_blank=True, max_length=200)


class ProductCreateInputSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=200)
    price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal(0))
    currency = serializers.CharField(min_length=3, max_length=3, required=False)
    category = serializers.SlugRelatedField(
        slug_field="slug", queryset=Category.objects.all(), required=False, allow_null=True
    )
    description = serializers.CharField(required=False, allow_blank=True, default="")
    is_active = serializers.BooleanField(required=False, default=True)

    def validate_currency(self, value: str) -> str:
        return value.upper()

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        attrs = super().to_internal_value(data)
        if not self.partial:
            attrs.setdefault("currency", settings.CATALOG_DEFAULT_CURRENCY)
            attrs.setdefault("category", None)
        return attrs


class ProductUpdateInputSerializer(ProductCreateInputSerializer):
    """PATCH: any subset of the product's fields."""


class ProductImageUploadInputSerializer(serializers.Serializer):
    image = serializers.FileField(help_text="The product photo.")
    display_order = serializers.IntegerField(min_value=0, required=False)


# --- output ---------------------------------------------------------------------------------
class CategoryRefOutputSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()


class CategoryOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()
    parent = serializers.CharField(source="parent.slug", allow_null=True, help_text="Parent category slug.")
    product_count = serializers.IntegerField(help_text="Active products directly in this category.")


def _thumbnail(request: Any, image: ProductImage | None) -> str | None:
    from catalog.thumbnails import thumbnail_url

    return _absolute(request, thumbnail_url(image, THUMBNAIL_SIZE)) if image is not None else None


class ThumbnailOutputSerializer(serializers.Serializer):
    url = serializers.SerializerMethodField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, thumbnail: Any) -> str:
        return _absolute(self.context.get("request"), thumbnail.url)


class ProductImageOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    display_order = serializers.IntegerField()

    def get_url(self, image: ProductImage) -> str:
        return _absolute(self.context.get("request"), image.image.url)

    def get_thumbnail_url(self, image: ProductImage) -> str:
        return _thumbnail(self.context.get("request"), image)


class ProductOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    sku = serializers.CharField()
    name = serializers.CharField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=True)
    currency = serializers.CharField()
    category = CategoryRefOutputSerializer(allow_null=True)
    url = serializers.SerializerMethodField(help_text="The product page.")
    thumbnail_url = serializers.SerializerMethodField(help_text="Thumbnail of the main photo.")
    thumbnails = serializers.SerializerMethodField(
        help_text="The main photo in WebP at several sizes, smallest first (for an <img srcset>); "
        "empty without a photo."
    )

    def get_url(self, product: Product) -> str:
        return _absolute(self.context.get("request"), product.get_absolute_url())

    @extend_schema_field(OpenApiTypes.URI)
    def get_thumbnail_url(self, product: Product) -> str | None:
        return _thumbnail(self.context.get("request"), product.primary_image)

    @extend_schema_field(ThumbnailOutputSerializer(many=True))
    def get_thumbnails(self, product: Product) -> list[dict]:
        from catalog.thumbnails import thumbnail_set

        image = product.primary_image
        found = thumbnail_set(image) if image is not None else []
        return ThumbnailOutputSerializer(found, many=True, context=self.context).data


class ProductDetailOutputSerializer(ProductOutputSerializer):
    description = serializers.CharField()
    is_active = serializers.BooleanField()
    images = ProductImageOutputSerializer(many=True, source="images.all")


class ImageCreateOutputSerializer(serializers.Serializer):
    image = ProductImageOutputSerializer()
    created = serializers.BooleanField(help_text="False when the product already had this exact photo.")
    warnings = serializers.ListField(child=serializers.CharField())


class ErrorOutputSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)
