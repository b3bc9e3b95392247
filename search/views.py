"""Shopper pages. Placeholder bodies until the page lands; the URL names are the contract."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404

from catalog.models import Product


def shop_by_photo(request: HttpRequest) -> HttpResponse:
    return HttpResponse("Shop by photo: coming soon.")


def product_detail(request: HttpRequest, pk: int) -> HttpResponse:
    product = get_object_or_404(Product, pk=pk, is_active=True)
    return HttpResponse(product.name)
