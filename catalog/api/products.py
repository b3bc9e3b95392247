"""Products in the JSON API: public reads, and writes for integrations (a token with the model permission).

Writes call the same catalog services as the admin (product_create/update/delete,
product_image_create/delete), so photos are validated, screened and embedded the same way.
Reads are public; writes need the model permission (add/change/delete) of each view's `queryset`
model, for tokens and sessions alike (catalog.api.permissions.CatalogWritePermission).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from catalog.api import serializers as s
from catalog.api.openapi import errors
from catalog.api.pagination import ProductPagination
from catalog.api.parsers import SafeJSONParser
from catalog.models import Product, ProductImage
from catalog.selectors import category_list, product_get, product_list
from catalog.services.images import product_image_create, product_image_delete
from catalog.services.products import product_create, product_delete, product_update

# Room for the multipart boundary, headers and the small form fields next to the photo.
FORM_OVERHEAD_BYTES = 64 * 1024
PRODUCT_FILTERS = [
    OpenApiParameter("category", str, description="Category slug (its subcategories included)."),
    OpenApiParameter("min_price", OpenApiTypes.DECIMAL),
    OpenApiParameter("max_price", OpenApiTypes.DECIMAL),
    OpenApiParameter("q", str, description="Words that must all occur in the name, SKU or description."),
]


def validated(serializer_class: type[Serializer], data: Any, *, partial: bool = False) -> dict[str, Any]:
    """The serializer's validated data, or a ValidationError (400 with field errors)."""
    serializer = serializer_class(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def without_blanks(data: dict[str, Any]) -> dict[str, Any]:
    """Search and filter options: an empty form field or ?min_price= means "not given"."""
    return {key: value for key, value in data.items() if value != ""}


def active_product(pk: int) -> Product:
    """A product shoppers may see (hidden products answer 404 like missing ones)."""
    product = product_get(pk=pk, active=True)
    if product is None:
        raise Http404("No such product.")
    return product


def any_product(pk: int) -> Product:
    """For writers: hidden products too (an integration may re-activate one)."""
    product = product_get(pk=pk, active=None)
    if product is None:
        raise Http404("No such product.")
    return product


def detail_response(request: Request, product: Product, code: int = status.HTTP_200_OK) -> Response:
    product = product_get(pk=product.pk, active=None)  # fresh, with photos prefetched
    return Response(s.ProductDetailOutputSerializer(product, context={"request": request}).data, status=code)


class PhotoTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


def _refuse_oversized_body(request: Request, *, max_bytes: int) -> None:
    """A photo upload whose declared body is over the photo limit is refused before it is read."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError as exc:
        raise ParseError("The Content-Length header is not a number.") from exc
    if length > max_bytes + FORM_OVERHEAD_BYTES:
        raise PhotoTooLarge(f"The photo is too large: the limit is {max_bytes // 1024} KB.")


class ProductListView(generics.GenericAPIView):
    """GET /api/v1/products/ (public, paginated, filterable); POST creates a product (token)."""

    queryset = Product.objects.all()  # what writes change (permissions) and the browsable API's model
    serializer_class = s.ProductOutputSerializer
    pagination_class = ProductPagination
    parser_classes = [SafeJSONParser, MultiPartParser]

    @extend_schema(
        operation_id="products_list",
        parameters=PRODUCT_FILTERS,
        responses={200: s.ProductOutputSerializer(many=True), **errors(400, 404)},
    )
    def get(self, request: Request) -> Response:
        filters = validated(s.ProductFilterInputSerializer, without_blanks(request.query_params.dict()))
        products = product_list(
            category=filters.get("category"),
            min_price=filters.get("min_price"),
            max_price=filters.get("max_price"),
            search=filters.get("q") or None,
        )
        page = self.paginate_queryset(products)
        data = s.ProductOutputSerializer(page, many=True, context={"request": request}).data
        return self.get_paginated_response(data)

    @extend_schema(
        operation_id="products_create",
        request=s.ProductCreateInputSerializer,
        responses={201: s.ProductDetailOutputSerializer, **errors(400, 401, 403, 415)},
    )
    def post(self, request: Request) -> Response:
        attrs = validated(s.ProductCreateInputSerializer, request.data)
        product = product_create(**attrs)
        return detail_response(request, product, status.HTTP_201_CREATED)


class ProductDetailView(APIView):
    """GET /api/v1/products/{id}/ (public); PATCH and DELETE (token)."""

    queryset = Product.objects.all()
    parser_classes = [SafeJSONParser, MultiPartParser]

    @extend_schema(
        operation_id="products_retrieve", responses={200: s.ProductDetailOutputSerializer, **errors(404)}
    )
    def get(self, request: Request, pk: int) -> Response:
        product = active_product(pk)
        return Response(s.ProductDetailOutputSerializer(product, context={"request": request}).data)

    @extend_schema(
        operation_id="products_partial_update",
        request=s.ProductUpdateInputSerializer,
        responses={200: s.ProductDetailOutputSerializer, **errors(400, 401, 403, 404, 415)},
    )
    def patch(self, request: Request, pk: int) -> Response:
        product = any_product(pk)
        attrs = validated(s.ProductUpdateInputSerializer, request.data, partial=True)
        product_update(product=product, **attrs)
        return detail_response(request, product)

    @extend_schema(operation_id="products_destroy", responses={204: None, **errors(401, 403, 404)})
    def delete(self, request: Request, pk: int) -> Response:
        product_delete(product=any_product(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProductImageListView(APIView):
    """POST /api/v1/products/{id}/images/ (token): add a photo; it is embedded and indexed."""

    queryset = ProductImage.objects.all()
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="products_images_create",
        request={"multipart/form-data": s.ProductImageUploadInputSerializer},
        responses={
            201: s.ImageCreateOutputSerializer,
            200: s.ImageCreateOutputSerializer,
            **errors(400, 401, 403, 404, 413, 415),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        # Checked before the body is parsed: a huge upload is refused without being stored.
        _refuse_oversized_body(request, max_bytes=settings.CATALOG_IMAGE_MAX_BYTES)
        product = any_product(pk)
        attrs = validated(s.ProductImageUploadInputSerializer, request.data)
        upload = attrs["image"]
        result = product_image_create(
            product=product,
            file=upload,
            display_order=attrs.get("display_order"),
            original_name=getattr(upload, "name", "") or "",
        )
        body = {"image": result.image, "created": result.created, "warnings": result.warnings}
        data = s.ImageCreateOutputSerializer(body, context={"request": request}).data
        return Response(data, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class ProductImageDetailView(APIView):
    """DELETE /api/v1/products/{id}/images/{image_id}/ (token)."""

    queryset = ProductImage.objects.all()

    @extend_schema(operation_id="products_images_destroy", responses={204: None, **errors(401, 403, 404)})
    def delete(self, request: Request, pk: int, image_id: int) -> Response:
        image = get_object_or_404(ProductImage, pk=image_id, product_id=pk)
        product_image_delete(image=image)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CategoryListView(APIView):
    """GET /api/v1/categories/: every category with its count of active products."""

    @extend_schema(operation_id="categories_list", responses={200: s.CategoryOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(s.CategoryOutputSerializer(category_list(), many=True).data)
