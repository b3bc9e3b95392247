"""API serializers: input ones validate what clients send, output ones shape what we answer.

They are separate and uniquely named so the OpenAPI schema describes requests and responses exactly.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.api.serializers import (
    CatalogFilterInputSerializer,
    ProductImageOutputSerializer,
    ProductOutputSerializer,
)
from search.models import SearchFeedback
from search.services.feedback import MAX_RANK, query_id_sign
from search.services.status import IndexState
from search.uploads import parse_crop

K_MAX = 100
K_DEFAULT = 12


# --- shared input pieces --------------------------------------------------------------------
@extend_schema_field(OpenApiTypes.STR)
class CropField(serializers.Field):
    """A crop box: "x,y,w,h" in a form field or query string, or {"x","y","w","h"} in JSON."""

    default_error_messages = {"invalid": "{message}"}

    def to_internal_value(self, data: Any) -> tuple[float, float, float, float] | None:
        try:
            return parse_crop(data)
        except ValueError as exc:
            self.fail("invalid", message=str(exc))

    def to_representation(self, value: Any) -> Any:
        return value


class CropInputSerializer(serializers.Serializer):
    """The JSON form of a crop box, in fractions of the image (x + w <= 1, y + h <= 1)."""

    x = serializers.FloatField(min_value=0, max_value=1)
    y = serializers.FloatField(min_value=0, max_value=1)
    w = serializers.FloatField(min_value=0, max_value=1)
    h = serializers.FloatField(min_value=0, max_value=1)


@extend_schema_field(CropInputSerializer)
class CropObjectField(CropField):
    """JSON crop: documented as an object; "x,y,w,h" is accepted too."""


class SearchOptionsInputSerializer(CatalogFilterInputSerializer):
    k = serializers.IntegerField(min_value=1, max_value=K_MAX, default=K_DEFAULT)
    objects = serializers.BooleanField(
        default=True,
        help_text="Find the things in the photo and search each (not with a crop); false: one fast answer.",
    )
    object_k = serializers.IntegerField(
        min_value=1,
        max_value=K_MAX,
        required=False,
        help_text="Hits per object (default SEARCH_OBJECT_RESULTS).",
    )


class SearchUploadInputSerializer(SearchOptionsInputSerializer):
    """multipart/form-data search: the photo as a file (crop as "x,y,w,h")."""

    # Empty files reach search.uploads, which answers them with the same code as the page ("empty").
    image = serializers.FileField(
        allow_empty_file=True, help_text="The query photo (JPEG, PNG, WebP, GIF, BMP or TIFF)."
    )
    crop = CropField(required=False, allow_null=True, help_text='"x,y,w,h" as fractions of the image.')


class SearchJsonInputSerializer(SearchOptionsInputSerializer):
    """application/json search: a photo URL or a base64 photo (optionally a data: URL)."""

    url = serializers.URLField(required=False, max_length=2048, help_text="http(s) URL of a photo.")
    image = serializers.CharField(
        required=False, trim_whitespace=True, help_text="The photo, base64-encoded (a data: URL is accepted)."
    )
    crop = CropObjectField(required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if bool(attrs.get("url")) == bool(attrs.get("image")):
            raise serializers.ValidationError({"image": ["Send exactly one of `image` (base64) or `url`."]})
        return attrs


class SimilarInputSerializer(serializers.Serializer):
    k = serializers.IntegerField(min_value=1, max_value=K_MAX, default=K_DEFAULT)


class SearchHitOutputSerializer(serializers.Serializer):
    product = ProductOutputSerializer()
    score = serializers.FloatField(help_text="Similarity in [0, 1]; 1 is the same picture.")
    match = serializers.ChoiceField(
        choices=["close", "similar", "weak"],
        help_text='"close", "similar" or "weak" (only the nearest item); see SEARCH_CLOSE_MATCH.',
    )
    matched_image = ProductImageOutputSerializer(source="image", help_text="The product photo that matched.")


class ModelInfoOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    fingerprint = serializers.CharField()
    pretrained = serializers.BooleanField()
    fallback = serializers.BooleanField()
    untrained = serializers.BooleanField()
    weights_source = serializers.CharField()


class BoxOutputSerializer(serializers.Serializer):
    """A box in fractions of the photo, the same shape a `crop` takes."""

    x = serializers.FloatField()
    y = serializers.FloatField()
    w = serializers.FloatField()
    h = serializers.FloatField()


QUERY_ID_HELP = (
    "Opaque, signed reference to the search these results answer (valid for a day): send it back "
    "with feedback on one of them (POST /api/v1/search/feedback/)."
)


class ObjectOutputSerializer(serializers.Serializer):
    """A thing found in the photo; needs the search's SearchQuery as context["query"]."""

    box = serializers.SerializerMethodField()
    score = serializers.FloatField(help_text="0..1: how clearly one thing stands out there.")
    results = SearchHitOutputSerializer(many=True, source="hits")
    query_id = serializers.SerializerMethodField(help_text=QUERY_ID_HELP + " These hits were for `box`.")

    @extend_schema_field(BoxOutputSerializer)
    def get_box(self, match) -> dict[str, float]:
        return dict(zip("xywh", match.box, strict=True))

    def get_query_id(self, match) -> str:
        return query_id_sign(self.context["query"], crop=match.box)


class SearchResultOutputSerializer(serializers.Serializer):
    query_id = serializers.CharField(help_text=QUERY_ID_HELP)
    results = SearchHitOutputSerializer(many=True)
    nothing_close = serializers.BooleanField(
        help_text="True when even the best hit is weak: the results are only the nearest items."
    )
    objects = ObjectOutputSerializer(
        many=True,
        help_text="Things found in the photo, best first, each with its top hits (none with a crop).",
    )
    model = ModelInfoOutputSerializer()
    timings = serializers.DictField(child=serializers.FloatField(), help_text="Milliseconds per stage.")
    warnings = serializers.ListField(child=serializers.CharField())


class FeedbackInputSerializer(serializers.Serializer):
    """A shopper's verdict on one hit of a search."""

    query_id = serializers.CharField(
        max_length=1000, help_text="The `query_id` of the results (or of the thing's results) the hit was in."
    )
    product = serializers.IntegerField(min_value=1, help_text="The hit's product id.")
    verdict = serializers.ChoiceField(
        choices=SearchFeedback.Verdict.choices,
        help_text='"this_one": what the shopper was looking for; "not_this": not what they were looking for.',
    )
    rank = serializers.IntegerField(min_value=1, max_value=MAX_RANK, help_text="The hit's place, 1 = first.")
    score = serializers.FloatField(min_value=0, max_value=1, help_text="The hit's score, as answered.")


class FeedbackOutputSerializer(serializers.Serializer):
    verdict = serializers.CharField(source="feedback.verdict")
    product = serializers.IntegerField(source="feedback.product_id")
    created = serializers.BooleanField(help_text="False: an earlier verdict on this hit was changed.")
    photo_kept = serializers.BooleanField(
        help_text="Whether the query photo is kept with the feedback (only while photo retention is on)."
    )


class SimilarOutputSerializer(serializers.Serializer):
    product = ProductOutputSerializer()
    results = SearchHitOutputSerializer(many=True)
    model = ModelInfoOutputSerializer()
    warnings = serializers.ListField(child=serializers.CharField())


class ImageFailureOutputSerializer(serializers.Serializer):
    image_id = serializers.IntegerField()
    product_id = serializers.IntegerField()
    product_sku = serializers.CharField()
    reason = serializers.CharField()


class BuildSummaryOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True)
    version = serializers.CharField()
    status = serializers.CharField()
    fingerprint = serializers.CharField()
    fingerprint_matches = serializers.BooleanField()
    built_at = serializers.DateTimeField(allow_null=True)
    vectors = serializers.IntegerField()
    dim = serializers.IntegerField()
    params = serializers.DictField()
    size_bytes = serializers.IntegerField()
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    started_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField()


class IndexStatusOutputSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The model in use (empty when none could be loaded).")
    requested = serializers.CharField()
    fingerprint = serializers.CharField()
    pretrained = serializers.BooleanField()
    fallback = serializers.BooleanField()
    untrained = serializers.BooleanField()
    weights_source = serializers.CharField()
    dim = serializers.IntegerField()
    model_error = serializers.CharField()
    products = serializers.IntegerField(help_text="Active products.")
    images = serializers.IntegerField()
    embedded = serializers.IntegerField()
    pending = serializers.IntegerField()
    failed = serializers.IntegerField()
    recent_failures = ImageFailureOutputSerializer(many=True)
    current_build = BuildSummaryOutputSerializer(allow_null=True)
    running_build = BuildSummaryOutputSerializer(allow_null=True)
    last_error = serializers.CharField()
    exact_fallback = serializers.BooleanField()
    index_problem = serializers.CharField(
        help_text="Empty, or why the published index build does not serve and what serves instead."
    )
    state = serializers.ChoiceField(choices=[state.value for state in IndexState])
    backend = serializers.ChoiceField(
        choices=["annoy", "hnsw", "milvus"],
        help_text="The vector store that serves searches (SEARCH_VECTOR_BACKEND).",
    )
