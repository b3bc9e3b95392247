"""The OpenAPI side of the API: error responses shared by the declarations (all use the one error
shape) and the interactive docs pages."""

from drf_spectacular.utils import OpenApiResponse
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

from catalog.api.serializers import ErrorOutputSerializer

ERRORS = {
    400: OpenApiResponse(ErrorOutputSerializer, description="Invalid input or an unusable photo."),
    404: OpenApiResponse(ErrorOutputSerializer, description="Not found."),
    413: OpenApiResponse(ErrorOutputSerializer, description="Photo or request too large."),
    415: OpenApiResponse(ErrorOutputSerializer, description="Unsupported request content type."),
    429: OpenApiResponse(ErrorOutputSerializer, description="Too many searches; see Retry-After."),
    401: OpenApiResponse(ErrorOutputSerializer, description="Authentication required (Token <key>)."),
    403: OpenApiResponse(ErrorOutputSerializer, description="Not allowed."),
    503: OpenApiResponse(ErrorOutputSerializer, description="No image model could be loaded."),
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: ERRORS[code] for code in codes}


class ApiDocsView(SpectacularSwaggerView):
    """Swagger UI. GET only: its HTML template needs what get() puts in the context, so OPTIONS would
    render it without and fail; 405 is the honest answer."""

    http_method_names = ["get", "head"]


class ApiRedocView(SpectacularRedocView):
    """ReDoc, GET only for the same reason as ApiDocsView."""

    http_method_names = ["get", "head"]
