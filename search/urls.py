"""Shopper pages: "shop by photo" at /, the product page, and feedback on a hit without JavaScript."""

from django.urls import path

from search import feedback_page, product_page, views

urlpatterns = [
    path("feedback/", feedback_page.shop_feedback, name="search-feedback"),
    path("products/<int:pk>/", product_page.product_detail, name="product-detail"),
    path("", views.shop_by_photo, name="shop-by-photo"),
]
