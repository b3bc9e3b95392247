"""Shopper pages: "shop by photo" at /, and the result cards the product page (search.product_page) shows too.

The page works without JavaScript: the form posts here and results are rendered on the server, with
a row for each other thing found in the photo. With JavaScript, static/js/shop/ (ES modules, entry
main.js) calls the JSON API instead, draws the things over the photo and keeps the search in the page
URL; on a shared search it takes the things the server found from the page (#photo-objects).
"""

from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from catalog import selectors as catalog_selectors
from catalog.models import Category, Product
from catalog.thumbnails import Thumbnail, thumbnail_set, thumbnail_url
from search import services
from search.api.serializers import ObjectOutputSerializer
from search.forms import PhotoSearchForm
from search.public_text import without_server_paths
from search.services.query import ObjectMatch  # not re-exported by search.services
from search.shop_photo import (
    covers_photo,
    crop_box_style,
    crop_readout,
    photo_box,
    place_in_photo,
    results_scope,
)
from search.uploads import QueryImageError

PAGE_RESULTS = 24
# Only a close hit is called a match (in green); a weak one is only the nearest item.
MATCH_LABELS = {"close": "{percent}% match", "similar": "Looks similar ({percent}%)", "weak": "Nearest item"}
CARD_THUMB_SIZE = 320  # the JPEG for browsers without WebP; the others pick from card_srcset()
# How wide a card is (the .grid columns in shop.css); "auto" (a lazy image's own width, where the
# browser knows it) also fits the narrower cards of a "thing" row.
CARD_SIZES = (
    "auto, (min-width: 1120px) 260px, (min-width: 960px) calc(25vw - 20px), "
    "(min-width: 640px) calc(33vw - 22px), calc(50vw - 24px)"
)
# Query-string keys that describe a search; a shared page URL carries them.
SHARE_KEYS = ("url", "crop", "category", "min_price", "max_price")


@dataclass(frozen=True)
class Card:
    """One product card: what the results grid shows for a hit."""

    product: Product
    thumbnail: str
    similarity: int  # percent, 0-100
    match: str  # "close", "similar" or "weak" (search.services.ranking.match_level)
    sources: tuple[Thumbnail, ...] = ()  # WebP sizes of the same photo
    rank: int = 0  # its place in its list, 1 = first (shopper feedback sends it back)
    score: float = 0.0  # the similarity as the service scored it, in [0, 1]

    @property
    def match_label(self) -> str:
        return MATCH_LABELS[self.match].format(percent=self.similarity)

    @property
    def srcset(self) -> str:
        return card_srcset(self.sources)


def card_srcset(sources: tuple[Thumbnail, ...] | list[Thumbnail]) -> str:
    """A card shows its photo whole inside a square (object-fit: contain), so the photo's longer side
    is what must fill the square: each file is described by it. Same rule as cardSrcset() in
    static/js/shop/results.js."""
    return ", ".join(f"{source.url} {max(source.width, source.height)}w" for source in sources)


@dataclass(frozen=True)
class ThingRow:
    """A thing found in the photo besides the main one, with its own top hits."""

    number: int  # things are numbered as the page numbers them: 1 is the main one
    place: str  # where it lies in the photo, in words
    cards: list[Card]
    search_url: str  # searches only this thing; "" when the photo cannot travel in a link (an upload)
    query_id: str  # the signed reference shopper feedback on these cards sends back (services.feedback)


@dataclass(frozen=True)
class Notice:
    level: str  # "info" or "warning": only changes the colour
    text: str


class SearchFailed(Exception):
    """A search the shopper asked for could not run; the message is shown to them as is."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def shop_by_photo(request: HttpRequest) -> HttpResponse:
    categories = list(catalog_selectors.category_list())
    data = request.POST if request.method == "POST" else request.GET
    form = PhotoSearchForm(data or None, request.FILES or None, categories=categories)
    # A POST is a search; a GET is one only when it names an image URL (a shared or reloaded search).
    wants_search = request.method == "POST" or bool(request.GET.get("url"))
    context = {
        "form": form,
        "notices": index_notices(),
        "max_bytes": settings.SEARCH_QUERY_MAX_BYTES,
        "searched": False,
        "cards": [],
        "error": "",
        "upload_reload": request.method == "GET" and request.GET.get("photo") == "upload",
        "share_url": "",
        "results_scope": "",
        "thing_rows": [],
        "photo_objects": None,
        "photo_box": None,
        "crop_readout": "",
        "crop_box_style": "",
        "more_cards": [],
        "results_total": 0,
        "card_sizes": CARD_SIZES,
        "query_id": "",
    }
    status = 200
    if wants_search:
        try:
            result = _search(form, categories)
            things = [found for found in result.objects if not covers_photo(found.box)]
            context["cards"], context["more_cards"] = fold_weak(hit_cards(result.hits))
            context["results_total"] = len(result.hits)
            context["query_id"] = services.query_id_sign(result.query)
            context["searched"] = True
            context["share_url"] = _share_url(request, form)
            context["photo_box"] = photo_box(result.photo_size)
            crop = form.cleaned_data.get("crop")
            context["crop_readout"] = crop_readout(crop, things)
            context["crop_box_style"] = crop_box_style(crop, things)
            context["results_scope"] = results_scope(crop, things)
            context["thing_rows"] = _thing_rows(request, form, things, result.query)
            if things and context["share_url"]:  # the script draws them over the photo of a shared search
                serializer = ObjectOutputSerializer(
                    result.objects, many=True, context={"request": request, "query": result.query}
                )
                context["photo_objects"] = serializer.data
        except SearchFailed as exc:
            context["error"], status = exc.message, exc.status
    return render(request, "search/shop.html", context, status=status)


def _search(form: PhotoSearchForm, categories: list[Category]) -> services.SearchResult:
    if form.is_valid():
        form.require_photo()
    if not form.is_valid():
        raise SearchFailed(_form_error_text(form), 400)
    data = form.cleaned_data
    source = services.PhotoSource(upload=data["image"] or None, url=data["url"] or None)
    filters = services.SearchFilters(
        category=next((c for c in categories if c.slug == data["category"]), None),
        min_price=data["min_price"],
        max_price=data["max_price"],
    )
    try:
        return services.photo_search(source, crop=data["crop"], filters=filters, k=PAGE_RESULTS)
    except QueryImageError as exc:  # UrlFetchError too: the same shape, from the same service
        raise SearchFailed(exc.message, exc.status_code) from exc
    except services.SearchUnavailable as exc:
        message = without_server_paths(str(exc)) or "Search is unavailable right now. Please try again later."
        raise SearchFailed(message, 503) from exc


def _form_error_text(form: PhotoSearchForm) -> str:
    messages = list(form.non_field_errors())
    for name, errors in form.errors.items():
        if name != "__all__":
            messages += [f"{form.fields[name].label}: {error}" for error in errors]
    return " ".join(messages)


def fold_weak(cards: list[Card]) -> tuple[list[Card], list[Card]]:
    """(shown, folded): when some hits are close or similar, the weak ones (only the nearest items) go
    under "N more items, less alike" instead of burying the good ones; when none is, all are shown
    (the page then says nothing close was found). Same rule as foldWeak() in static/js/shop/results.js."""
    strong = [card for card in cards if card.match != "weak"]
    if not strong:
        return cards, []
    return strong, [card for card in cards if card.match == "weak"]


def hit_cards(hits: list[services.Hit]) -> list[Card]:
    return [
        Card(
            product=hit.product,
            thumbnail=thumbnail_url(hit.image, CARD_THUMB_SIZE),
            similarity=round(hit.score * 100),  # the service clips scores to [0, 1]
            match=hit.match,
            sources=tuple(thumbnail_set(hit.image)),
            rank=rank,
            score=hit.score,
        )
        for rank, hit in enumerate(hits, start=1)
    ]


def _thing_rows(
    request: HttpRequest, form: PhotoSearchForm, things: list[ObjectMatch], query: services.SearchQuery
) -> list[ThingRow]:
    """Rows for the things besides the main one (the first), which leads the combined results already."""
    return [
        ThingRow(
            number=number,
            place=place_in_photo(thing.box),
            cards=hit_cards(thing.hits),
            search_url=_share_url(request, form, crop=thing.box),
            query_id=services.query_id_sign(query, crop=thing.box),
        )
        for number, thing in enumerate(things, start=1)
        if number > 1
    ]


def _share_url(request: HttpRequest, form: PhotoSearchForm, crop: tuple[float, ...] | None = None) -> str:
    """A link that re-runs this search (with `crop` instead of the search's own, if given): only
    possible when the photo came from a URL."""
    if not form.cleaned_data.get("url"):
        return ""
    params = {key: form.data.get(key, "") for key in SHARE_KEYS}
    if crop is not None:
        params["crop"] = ",".join(f"{value:g}" for value in crop)  # as the page writes it: "x,y,w,h"
    query = urlencode({key: value for key, value in params.items() if value})
    return request.build_absolute_uri(f"{request.path}?{query}")


def index_notices() -> list[Notice]:
    """Plain-language banners, only when search by photo is really worse than usual: no model, a
    fallback or untrained one, nothing searchable at all, or the previous model's index serving after a
    model switch. A running build or photos waiting for the next one are not mentioned: new photos are
    searched exactly at once (search.selectors.fresh_embeddings); the admin dashboard explains them."""
    status = services.index_status()
    notices = []
    if status.model_error:
        text = f"Search by photo is unavailable: {status.model_error}"
        notices.append(Notice("warning", without_server_paths(text)))
    elif status.untrained:
        notices.append(Notice("warning", "Search uses an untrained test model: results are not meaningful."))
    elif status.fallback:  # shoppers are not told backbone names (the API and the admin are)
        notices.append(
            Notice("info", "Search is running on a fallback model, so matches may be less accurate.")
        )
    if status.current_build is None and status.embedded == 0:  # a first build may be running: still empty
        notices.append(
            Notice("warning", "The shop's photo index is empty: no products can be found by photo yet.")
        )
    elif not status.current_build.fingerprint_matches and not status.model_error:  # while it rebuilds too
        notices.append(
            Notice(
                "warning",
                "The shop is switching to a new image model: results come from the previous model until "
                "the new photo index is ready.",
            )
        )
    return notices
