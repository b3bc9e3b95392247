"""One error shape for everything under /api/: {"detail": ..., "code": ...} and, for invalid input,
{"detail": "Invalid input.", "code": "invalid", "errors": {field: [messages]}}.

`api_exception_handler` is REST_FRAMEWORK["EXCEPTION_HANDLER"]; `not_found` and `server_error` are the
project's handler404/handler500, answering JSON under /api/ and Django's HTML pages elsewhere.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from search.embedder import SearchUnavailable
from search.fetch import UrlFetchError
from search.public_text import shown_to
from search.services.feedback import FeedbackRefused
from search.uploads import QueryImageError, http_status

logger = logging.getLogger(__name__)
API_PREFIX = "/api/"


def error_body(detail: str, code: str, errors: dict[str, list[str]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"detail": detail, "code": code}
    if errors is not None:
        body["errors"] = errors
    return body


def _field_errors(detail: Any) -> dict[str, list[str]]:
    """DRF's nested ValidationError detail flattened to {field: [messages]} ("a.b" for nesting)."""
    if isinstance(detail, list):
        detail = {"non_field_errors": detail}
    errors: dict[str, list[str]] = {}
    for field, messages in detail.items():
        if isinstance(messages, dict):
            for sub, sub_messages in _field_errors(messages).items():
                errors[f"{field}.{sub}"] = sub_messages
        else:
            items = messages if isinstance(messages, list) else [messages]
            errors[field] = [str(message) for message in items]
    return errors


def _django_validation(exc: DjangoValidationError) -> Response:
    if hasattr(exc, "error_dict"):
        errors = {field: [str(m) for m in msgs] for field, msgs in exc.message_dict.items()}
        return Response(error_body("Invalid input.", "invalid", errors), status=400)
    codes = {getattr(error, "code", None) for error in exc.error_list}
    code = codes.pop() if len(codes) == 1 and None not in codes else "invalid"
    return Response(error_body(" ".join(exc.messages), code or "invalid"), status=http_status(code))


def _domain_error(exc: Exception, user: Any = None) -> Response | None:
    """Errors of our own services, mapped to the API's status codes."""
    if isinstance(exc, QueryImageError | UrlFetchError | FeedbackRefused):
        return Response(error_body(exc.message, exc.code), status=exc.status_code)
    if isinstance(exc, SearchUnavailable):
        body = error_body(shown_to(user, str(exc)) or "Search is unavailable.", "search_unavailable")
        return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    if isinstance(exc, DjangoValidationError):
        return _django_validation(exc)
    if isinstance(exc, OperationalError):
        # The database is busy (SQLite's lock past its timeout) or unreachable: nothing was saved, and
        # the same request can simply be sent again.
        logger.warning("Database unavailable for an API request: %s", exc)
        body = error_body(
            "The catalog database is busy; nothing was saved. Try again shortly.", "database_busy"
        )
        return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "5"})
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("The request body is too large.", "too_large"), status=413)
    if isinstance(exc, SuspiciousOperation):
        return Response(error_body("The request was refused.", "bad_request"), status=400)
    return None


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's handler (status codes, WWW-Authenticate, Retry-After), then reshaped to one error shape."""
    request = context.get("request")
    response = _domain_error(exc, getattr(request, "user", None))
    if response is not None:
        return response
    response = exception_handler(exc, context)
    if response is None:
        # An unexpected bug: logged with its traceback, answered without one.
        logger.exception("Unhandled error in API view", exc_info=exc)
        return Response(error_body("Internal server error.", "server_error"), status=500)
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body("Invalid input.", "invalid", _field_errors(exc.detail))
        return response
    detail = getattr(exc, "detail", response.data.get("detail", ""))
    code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    response.data = error_body(str(detail), str(code))
    return response


@csrf_exempt  # any method may hit an unknown URL; the answer is always this JSON 404
def unknown_endpoint(request: HttpRequest, path: str = "") -> HttpResponse:
    """Last /api/v1/ route: JSON 404 even with DEBUG on, and a hint for a missing trailing slash."""
    detail = "Not found."
    if not request.path.endswith("/"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not unknown_endpoint:
            detail = f"Not found. Did you mean {request.path}/ (with a trailing slash)?"
    return JsonResponse(error_body(detail, "not_found"), status=404)


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_request(request):
        return JsonResponse(error_body("Not found.", "not_found"), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api_request(request):
        return JsonResponse(error_body("Internal server error.", "server_error"), status=500)
    return defaults.server_error(request)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_request(request):
        return JsonResponse(error_body("Bad request.", "bad_request"), status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_request(request):
        return JsonResponse(error_body("Permission denied.", "permission_denied"), status=403)
    return defaults.permission_denied(request, exception)
