"""Endpoints for load balancers and monitoring (docs/operations.md): /healthz, /readyz, /metrics."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from search.public_text import without_server_paths

# Set by a reverse proxy: REMOTE_ADDR is then the proxy's address, not the client's.
FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and answers: no database, model or index is touched."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when this process can answer searches (model loaded, index servable, database and broker
    reachable), else 503; each check says what it found. Public: no path on the server is shown."""
    from search.health import readiness

    result = readiness()
    body = {
        "status": "ready" if result.ready else "not ready",
        "checks": {
            name: {"ok": check.ok, "detail": check.detail, **check.facts}
            for name, check in result.checks.items()
        },
    }
    return JsonResponse(without_server_paths(body), status=200 if result.ready else 503)


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics, for METRICS_ALLOWED_IPS or the METRICS_BEARER_TOKEN only (403 otherwise)."""
    if not metrics_allowed(request):
        return HttpResponse(
            "Forbidden: see METRICS_ALLOWED_IPS and METRICS_BEARER_TOKEN.\n",
            status=403,
            content_type="text/plain",
        )
    from search.metrics import metrics_exposition

    body, content_type = metrics_exposition()
    return HttpResponse(body, content_type=content_type)


def metrics_allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_BEARER_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return True
    if any(header in request.META for header in FORWARDING_HEADERS):
        return False  # came through a proxy: its address says nothing about the client
    try:
        client = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if client.version == 6 and client.ipv4_mapped:
        client = client.ipv4_mapped
    return any(
        client in ipaddress.ip_network(allowed, strict=False) for allowed in settings.METRICS_ALLOWED_IPS
    )
