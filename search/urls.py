"""Shopper pages: "shop by photo" at / and the product page."""

from django.urls import path

from search import product_page, views

urlpatterns = [
    path("products/<int:pk>/", product_page.product_detail, name="product-detail"),
    path("", views.shop_by_photo, name="shop-by-photo"),
]
