"""Error responses shared by the API's OpenAPI declarations (all use the one error shape)."""

from drf_spectacular.utils import OpenApiResponse

from search.api.serializers import ErrorOutputSerializer

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
