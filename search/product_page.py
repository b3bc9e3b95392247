"""The product page: the product's photos (the main one sized before it loads, in WebP at several
sizes), its facts, what a search engine or a shared link shows of it, and visually similar products
(cards as on the shop page, search.views)."""

from dataclasses import dataclass

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from catalog import selectors as catalog_selectors
from catalog.models import Product, ProductImage
from catalog.thumbnails import Thumbnail, thumbnail_dimensions, thumbnail_set, thumbnail_url
from search import services
from search.public_text import without_server_paths
from search.views import CARD_SIZES, hit_cards, index_notices

SIMILAR_RESULTS = 8
# The product page's main photo: a JPEG for browsers without WebP, WebP sizes for the rest.
PHOTO_SIZE = 800
PHOTO_SIZES = (320, 640, 1024)
# How wide the main photo is (.product__gallery in shop.css): the page's width on a phone, the
# gallery column (1.1 of 2.1 fractions of the 1120 px frame) beside the facts on a wider screen.
PHOTO_SIZES_ATTR = "(min-width: 1120px) 560px, (min-width: 800px) 50vw, calc(100vw - 66px)"
GALLERY_THUMB_SIZE = 160
SUMMARY_CHARS = 160  # about what search engines show of a meta description


@dataclass(frozen=True)
class Photo:
    """One photo of the product page: the link to the original, the main frame's files and the
    gallery's small thumbnail."""

    original: str
    large: str  # JPEG, for browsers without WebP
    small: str
    width: int  # of `large`: the frame reserves its space before the file arrives
    height: int
    sources: tuple[Thumbnail, ...]

    @property
    def srcset(self) -> str:
        return ", ".join(f"{source.url} {source.width}w" for source in self.sources)


def product_detail(request: HttpRequest, pk: int) -> HttpResponse:
    product = catalog_selectors.product_get(pk=pk)
    if product is None or not product.is_active:
        raise Http404("No such product.")
    photos = list(product.images.all())
    similar_error = ""
    try:
        similar = hit_cards(services.similar_products(product, k=SIMILAR_RESULTS).hits)
    except services.SearchUnavailable as exc:
        similar, similar_error = (
            [],
            without_server_paths(str(exc)) or "Similar products are unavailable right now.",
        )
    photo_list = [_photo(photo) for photo in photos]
    context = {
        "product": product,
        "summary": product_summary(product),
        "page_url": request.build_absolute_uri(product.get_absolute_url()),
        "share_image": request.build_absolute_uri(photo_list[0].large) if photo_list else "",
        "photos": photo_list,
        "photo_sizes": PHOTO_SIZES_ATTR,
        "similar": similar,
        "similar_error": similar_error,
        "card_sizes": CARD_SIZES,
        "notices": index_notices(),
    }
    return render(request, "catalog/product_detail.html", context)


def product_summary(product: Product, limit: int = SUMMARY_CHARS) -> str:
    """One line for search engines and shared links (meta description, og:description): the
    product's own description when it has one, else what it is and costs."""
    text = " ".join(product.description.split())
    if not text:
        category = f" in {product.category.name}" if product.category else ""
        text = f"{product.name}, {product.price} {product.currency}{category}. "
        text += "See it and products that look like it."
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _photo(image: ProductImage) -> Photo:
    width, height = thumbnail_dimensions(image, PHOTO_SIZE)
    return Photo(
        original=image.image.url,
        large=thumbnail_url(image, PHOTO_SIZE),
        small=thumbnail_url(image, GALLERY_THUMB_SIZE),
        width=width,
        height=height,
        sources=tuple(thumbnail_set(image, PHOTO_SIZES)),
    )
