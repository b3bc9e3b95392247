"""Shopper feedback in the admin: the list to review (the query photo with the part searched outlined,
next to the product's photo), filtered by verdict and review, and the "confirm" / "reject" actions.
Confirmed "this one" rows with a photo are labelled examples (search.selectors.confirmed_feedback_pairs).

Staff need search.view_searchfeedback to see the list and search.change_searchfeedback to review;
nobody adds or edits feedback by hand (it comes from shoppers), and deleting one deletes its photo.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from catalog.thumbnails import thumbnail_url
from search.models import SearchFeedback
from search.services import feedback_review

THUMB = 96  # px, the longer side of both pictures in a row


@admin.register(SearchFeedback)
class SearchFeedbackAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "verdict",
        "query_photo",
        "product_photo",
        "product_link",
        "rank",
        "score_percent",
        "review",
    )
    list_filter = ("verdict", "review", "fingerprint")
    list_select_related = ("product", "reviewed_by")
    date_hierarchy = "created_at"
    search_fields = ("product__name", "product__sku", "photo_sha256")
    actions = ("confirm", "reject")
    readonly_fields = [field.name for field in SearchFeedback._meta.fields] + ["query_photo"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[SearchFeedback]:
        return super().get_queryset(request).prefetch_related("product__images")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # feedback comes from shoppers

    @admin.display(description="Query photo")
    def query_photo(self, feedback: SearchFeedback) -> SafeString | str:
        if not feedback.photo:
            return "not kept"
        # The crop searched, outlined over the photo (it scales with the picture: fractions as %).
        outline = ""
        if feedback.crop:
            x, y, w, h = (f"{value * 100:.2f}%" for value in feedback.crop)
            outline = format_html(
                '<span style="position:absolute;left:{};top:{};width:{};height:{};'
                'outline:2px solid #2f5bea;box-shadow:0 0 0 9999px rgba(0,0,0,.35)"></span>',
                x,
                y,
                w,
                h,
            )
        return format_html(
            '<a href="{}" style="position:relative;display:inline-block;overflow:hidden;line-height:0">'
            '<img src="{}" alt="Query photo" style="max-width:{}px;max-height:{}px">{}</a>',
            feedback.photo.url,
            feedback.photo.url,
            THUMB,
            THUMB,
            outline,
        )

    @admin.display(description="Product photo")
    def product_photo(self, feedback: SearchFeedback) -> SafeString | str:
        image = feedback.product.primary_image
        if image is None:
            return "no photo"
        url = thumbnail_url(image, 160)
        return format_html('<img src="{}" alt="" style="max-width:{}px;max-height:{}px">', url, THUMB, THUMB)

    @admin.display(description="Product", ordering="product__name")
    def product_link(self, feedback: SearchFeedback) -> SafeString:
        url = reverse("admin:catalog_product_change", args=[feedback.product_id])
        return format_html('<a href="{}">{}</a>', url, feedback.product)

    @admin.display(description="Score", ordering="score")
    def score_percent(self, feedback: SearchFeedback) -> str:
        return f"{feedback.score * 100:.0f} %"

    @admin.action(description="Confirm: the shopper was right (a labelled example)", permissions=["change"])
    def confirm(self, request: HttpRequest, queryset: QuerySet[SearchFeedback]) -> None:
        self._review(request, queryset, SearchFeedback.Review.CONFIRMED)

    @admin.action(description="Reject: not a reliable example", permissions=["change"])
    def reject(self, request: HttpRequest, queryset: QuerySet[SearchFeedback]) -> None:
        self._review(request, queryset, SearchFeedback.Review.REJECTED)

    def _review(self, request: HttpRequest, queryset: QuerySet[SearchFeedback], review: str) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        changed = feedback_review(feedback_ids=ids, review=review, reviewer=request.user)
        label = SearchFeedback.Review(review).label.lower()
        self.message_user(request, f"{changed} feedback {label}.", messages.SUCCESS)
