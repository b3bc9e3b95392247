"""/api/v1/: the JSON API (the catalog's products and categories, search's search, feedback on its
hits, similar products and index status), its OpenAPI schema and offline interactive docs.
Assembled here, in the project, because it spans both apps."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView

from catalog.api import products
from catalog.api.openapi import ApiDocsView, ApiRedocView
from search.api import exceptions, views

app_name = "api"
urlpatterns = [
    path("search/", views.SearchView.as_view(), name="search"),
    path("search/feedback/", views.SearchFeedbackView.as_view(), name="search-feedback"),
    path("products/", products.ProductListView.as_view(), name="product-list"),
    path("products/<int:pk>/", products.ProductDetailView.as_view(), name="product-detail"),
    path("products/<int:pk>/similar/", views.SimilarProductsView.as_view(), name="product-similar"),
    path("products/<int:pk>/images/", products.ProductImageListView.as_view(), name="product-image-list"),
    path(
        "products/<int:pk>/images/<int:image_id>/",
        products.ProductImageDetailView.as_view(),
        name="product-image-detail",
    ),
    path("categories/", products.CategoryListView.as_view(), name="category-list"),
    path("index/status/", views.IndexStatusView.as_view(), name="index-status"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", ApiDocsView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", ApiRedocView.as_view(url_name="api:schema"), name="redoc"),
    # Last: anything else under /api/v1/ is a JSON 404 (also with DEBUG on, where handler404 is unused).
    re_path(r"^(?P<path>.*)$", exceptions.unknown_endpoint, name="unknown"),
]
