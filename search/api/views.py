"""The JSON API's search side: search by photo, similar products, categories, index status.

Views parse and format; catalog selectors and search services do the work. Products (public reads,
writes with the model permission) and categories are in catalog.api.products.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.api.openapi import errors
from catalog.api.parsers import SafeJSONParser
from catalog.api.products import active_product, validated, without_blanks
from search.api import serializers as s
from search.api.throttling import SearchAnonThrottle, SearchFeedbackThrottle
from search.public_text import shown_to, without_server_paths
from search.services import (
    PhotoSource,
    SearchFilters,
    feedback_record,
    index_status,
    photo_search,
    query_id_sign,
    similar_products,
)
from search.services.state import model_warning
from search.uploads import check_content_length


def model_info(embedder: Any) -> dict[str, Any]:
    fields = ("name", "fingerprint", "pretrained", "fallback", "untrained", "weights_source")
    return without_server_paths({name: getattr(embedder, name) for name in fields})


def model_warnings(embedder: Any) -> list[str]:
    """Said in every answer: a fallback or untrained model changes what the results are worth."""
    warning = model_warning(embedder)
    return [warning] if warning else []


class SearchView(APIView):
    """POST /api/v1/search/: products that look like a photo (upload, base64 or URL)."""

    permission_classes = [AllowAny]
    throttle_classes = [SearchAnonThrottle]
    parser_classes = [SafeJSONParser, MultiPartParser]

    @extend_schema(
        operation_id="search_by_photo",
        summary="Find products that look like a photo",
        description=(
            "Send the photo as multipart `image`, or JSON with `url` (http/https) or base64 `image`. "
            "`k`, `category`, `min_price`, `max_price` and `crop` may also be given in the query string. "
            "`model` and `warnings` say when a fallback or untrained model answered."
        ),
        request={
            "multipart/form-data": s.SearchUploadInputSerializer,
            "application/json": s.SearchJsonInputSerializer,
        },
        responses={200: s.SearchResultOutputSerializer, **errors(400, 413, 415, 429, 503)},
    )
    def post(self, request: Request) -> Response:
        # Before request.data is touched: the body has not been read yet.
        check_content_length(request.META, max_bytes=settings.SEARCH_QUERY_MAX_BYTES)
        attrs = self._input(request)
        photo = attrs.get("image")
        source = PhotoSource(
            url=attrs.get("url") or None,
            base64=photo if isinstance(photo, str) else None,
            upload=photo if photo is not None and not isinstance(photo, str) else None,
        )
        filters = SearchFilters(
            category=attrs.get("category"), min_price=attrs.get("min_price"), max_price=attrs.get("max_price")
        )
        result = photo_search(
            source,
            crop=attrs.get("crop"),
            filters=filters,
            k=attrs["k"],
            objects=attrs["objects"],
            object_k=attrs.get("object_k"),
        )
        body = {
            "query_id": query_id_sign(result.query),
            "results": result.hits,
            "nothing_close": result.nothing_close,
            "objects": result.objects,
            "model": model_info(result.model),
            "timings": {name: round(ms, 2) for name, ms in result.timings.items()},
            "warnings": model_warnings(result.model),
        }
        context = {"request": request, "query": result.query}
        return Response(s.SearchResultOutputSerializer(body, context=context).data)

    def _input(self, request: Request) -> dict[str, Any]:
        body = request.data
        body = body.dict() if hasattr(body, "getlist") else body  # a form's QueryDict: one value each
        if not isinstance(body, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        multipart = request.content_type.startswith("multipart/")
        serializer = s.SearchUploadInputSerializer if multipart else s.SearchJsonInputSerializer
        return validated(serializer, without_blanks({**request.query_params.dict(), **body}))


class SearchFeedbackView(APIView):
    """POST /api/v1/search/feedback/: a shopper's "this one" / "not what I'm looking for" on one hit."""

    permission_classes = [AllowAny]  # no account needed; the query id and the throttle keep it honest
    throttle_classes = [SearchFeedbackThrottle]
    parser_classes = [SafeJSONParser, FormParser]

    @extend_schema(
        operation_id="search_feedback",
        summary="Say whether a hit is what the shopper was looking for",
        description=(
            "`query_id` is the one the search answered with: the answer's own for its `results`, an "
            "object's for that object's `results`. It is signed and valid for a day, so feedback can "
            "only be given on searches made here. Feedback on the same hit of the same query again "
            "changes the verdict (200) instead of adding one (201). The query photo is kept with it "
            "only while query-photo retention is on (SEARCH_KEEP_QUERY_PHOTOS_DAYS)."
        ),
        request={
            "application/json": s.FeedbackInputSerializer,
            "application/x-www-form-urlencoded": s.FeedbackInputSerializer,
        },
        responses={201: s.FeedbackOutputSerializer, 200: s.FeedbackOutputSerializer, **errors(400, 415, 429)},
    )
    def post(self, request: Request) -> Response:
        body = request.data
        body = body.dict() if hasattr(body, "getlist") else body
        if not isinstance(body, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        attrs = validated(s.FeedbackInputSerializer, body)
        recorded = feedback_record(
            query_id=attrs["query_id"],
            product_id=attrs["product"],
            verdict=attrs["verdict"],
            rank=attrs["rank"],
            score=attrs["score"],
        )
        status = 201 if recorded.created else 200
        return Response(s.FeedbackOutputSerializer(recorded).data, status=status)


class SimilarProductsView(APIView):
    """GET /api/v1/products/{id}/similar/?k=: products whose photos look like this one's."""

    throttle_classes = [SearchAnonThrottle]

    @extend_schema(
        operation_id="products_similar",
        parameters=[OpenApiParameter("k", int, description="How many (1-100, default 12).")],
        responses={200: s.SimilarOutputSerializer, **errors(400, 404, 429, 503)},
    )
    def get(self, request: Request, pk: int) -> Response:
        k = validated(s.SimilarInputSerializer, without_blanks(request.query_params.dict()))["k"]
        product = active_product(pk)
        result = similar_products(product, k=k)
        body = {
            "product": product,
            "results": result.hits,
            "model": model_info(result.model),
            "warnings": model_warnings(result.model),
        }
        return Response(s.SimilarOutputSerializer(body, context={"request": request}).data)


class IndexStatusView(APIView):
    """GET /api/v1/index/status/: the model, embedding progress and the serving index build."""

    @extend_schema(operation_id="index_status", responses={200: s.IndexStatusOutputSerializer})
    def get(self, request: Request) -> Response:
        data = s.IndexStatusOutputSerializer(index_status()).data
        return Response(shown_to(request.user, data))
