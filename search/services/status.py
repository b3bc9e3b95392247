"""What the admin, the shopper page and the API show about the search index (one product's place in it:
search.services.product_status)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from django.conf import settings
from django.db.models import F

from catalog.models import Product, ProductImage
from search.embedder import SearchUnavailable, current_embedder
from search.models import ImageEmbedding, IndexBuild
from search.selectors import fresh_embeddings, fresh_since

from .build_queue import build_lease_lapsed, build_lost_reason
from .embeddings import pending_images
from .state import ServingIndex, serving_index, serving_index_health

MODEL_FACTS = ("name", "requested", "fingerprint", "pretrained", "fallback", "untrained", "weights_source")
RECENT = 5  # failures listed by name in the status
LOST_NOT_YET_REAPED = "The next clean-up marks it failed and starts the next build."


class IndexState(StrEnum):
    """How the index stands for the configured model (status pages, API, metrics)."""

    EMPTY = "empty"  # nothing embedded, no build
    BUILDING = "building"  # a build is running
    READY = "ready"  # the serving build holds every searchable photo
    STALE = "stale"  # photos wait outside the serving build (searchable exactly meanwhile)
    MODEL_MISMATCH = "model-mismatch"  # the serving build was made with another model


@dataclass(frozen=True)
class ImageFailure:
    image_id: int
    product_id: int
    product_sku: str
    reason: str


@dataclass(frozen=True)
class BuildSummary:
    id: int | None
    version: str
    status: str
    fingerprint: str
    fingerprint_matches: bool
    built_at: datetime | None
    vectors: int
    dim: int
    params: dict
    size_bytes: int
    total: int = 0  # photos to embed first (running builds)
    done: int = 0
    failed: int = 0
    started_at: datetime | None = None
    error: str = ""


@dataclass(frozen=True)
class IndexStatus:
    # The model (empty strings / None when no model could be loaded: see model_error)
    name: str
    requested: str
    fingerprint: str
    pretrained: bool
    fallback: bool
    untrained: bool
    weights_source: str
    dim: int
    model_error: str
    # The catalog
    products: int  # active products
    images: int
    embedded: int  # done under the current model
    pending: int
    failed: int
    recent_failures: list[ImageFailure] = field(default_factory=list)
    # Builds
    current_build: BuildSummary | None = None
    running_build: BuildSummary | None = None
    last_error: str = ""
    exact_fallback: bool = False  # no index of this model: queries scan every vector exactly
    index_problem: str = ""  # the published build is damaged: what serves instead ("" when it serves)
    fresh: int = 0  # searchable now (exactly), not in the serving build: folded in by the next build
    fresh_since: datetime | None = None  # since when the longest-waiting of those has waited
    state: IndexState = IndexState.EMPTY
    backend: str = "annoy"  # the vector store (SEARCH_VECTOR_BACKEND)


def index_status() -> IndexStatus:
    model, model_error = _model_facts()
    fingerprint = model.get("fingerprint", "")
    serving = serving_index()
    embedded = _done(fingerprint).count() if fingerprint else 0
    pending = pending_images(fingerprint).count() if fingerprint else ProductImage.objects.count()
    failures = _failures(fingerprint)
    running = IndexBuild.objects.filter(status=IndexBuild.Status.RUNNING).first()
    lost = running is not None and build_lease_lapsed(running)
    if lost:  # its worker is gone: say so now, before the reaper marks it failed
        running, last_error = None, build_lost_reason(running, LOST_NOT_YET_REAPED)
    else:
        last_error = _last_error()
    fresh = _fresh_count(fingerprint, serving) if fingerprint else 0
    current = _build_summary(serving, fingerprint)
    return IndexStatus(
        **model,
        model_error=model_error,
        products=Product.objects.filter(is_active=True).count(),
        images=ProductImage.objects.count(),
        embedded=embedded,
        pending=pending,
        failed=failures.count(),
        recent_failures=[_failure(row) for row in failures.select_related("image__product")[:RECENT]],
        current_build=current,
        running_build=_running_summary(running, fingerprint) if running else None,
        last_error=last_error,
        exact_fallback=bool(fingerprint) and (current is None or not current.fingerprint_matches),
        index_problem=serving_index_health().problem,
        fresh=fresh,
        fresh_since=fresh_since(fingerprint, serving) if fresh else None,
        state=_state(current, running, embedded, pending, fresh),
        backend=settings.SEARCH_VECTOR_BACKEND,
    )


def _model_facts() -> tuple[dict, str]:
    try:
        embedder = current_embedder()
    except SearchUnavailable as exc:
        empty = dict(name="", requested="", fingerprint="", pretrained=False, fallback=False)
        return {**empty, "untrained": False, "weights_source": "", "dim": 0}, str(exc)
    facts = {name: getattr(embedder, name) for name in MODEL_FACTS}
    return {**facts, "weights_source": str(facts["weights_source"] or ""), "dim": int(embedder.dim)}, ""


def _done(fingerprint: str):
    return ImageEmbedding.objects.filter(fingerprint=fingerprint, status=ImageEmbedding.Status.DONE)


def _failures(fingerprint: str):
    return ImageEmbedding.objects.filter(
        fingerprint=fingerprint, status=ImageEmbedding.Status.FAILED, content_sha256=F("image__sha256")
    ).order_by("-updated_at")


def _failure(row: ImageEmbedding) -> ImageFailure:
    return ImageFailure(row.image_id, row.image.product_id, row.image.product.sku, row.error)


def _fresh_count(fingerprint: str, serving: ServingIndex | None) -> int:
    return fresh_embeddings(fingerprint, serving).count()


def _build_summary(serving: ServingIndex | None, fingerprint: str) -> BuildSummary | None:
    if serving is None:
        return None
    manifest, build = serving.reader.manifest, serving.build
    if serving.backend != "annoy":
        return _store_summary(serving, fingerprint)
    return BuildSummary(
        id=build.pk if build else None,
        version=serving.version,
        status=build.status if build else IndexBuild.Status.SUCCEEDED,
        fingerprint=serving.fingerprint,
        fingerprint_matches=serving.fingerprint == fingerprint,
        built_at=build.finished_at if build else _parse_time(manifest.built_at),
        vectors=build.vectors if build else int(getattr(manifest, "count", 0)),
        dim=build.dim if build else int(getattr(manifest, "dim", 0)),
        params=build.params if build else {},
        size_bytes=build.size_bytes if build else int(getattr(manifest, "size_bytes", 0)),
    )


def _store_summary(serving: ServingIndex, fingerprint: str) -> BuildSummary:
    """A shared store (hnsw, milvus) changes in place: its live count, its snapshot or collection, the
    build that last rebuilt it."""
    manifest, build = serving.reader.manifest, serving.build
    return BuildSummary(
        id=build.pk if build else None,
        version=serving.version,
        status=IndexBuild.Status.SUCCEEDED,
        fingerprint=serving.fingerprint,
        fingerprint_matches=serving.fingerprint == fingerprint,
        built_at=_parse_time(manifest.built_at),
        vectors=serving.count(),
        dim=int(manifest.dim),
        params=dict(manifest.params),
        size_bytes=int(manifest.size_bytes),
    )


def _parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def _running_summary(build: IndexBuild, fingerprint: str) -> BuildSummary:
    return BuildSummary(
        id=build.pk,
        version=build.version,
        status=build.status,
        fingerprint=build.fingerprint,
        fingerprint_matches=build.fingerprint == fingerprint,
        built_at=None,
        vectors=build.vectors,
        dim=build.dim,
        params=build.params,
        size_bytes=build.size_bytes,
        total=build.total,
        done=build.done,
        failed=build.failed,
        started_at=build.started_at,
    )


def _last_error() -> str:
    finished = [IndexBuild.Status.SUCCEEDED, IndexBuild.Status.FAILED]
    last = IndexBuild.objects.filter(status__in=finished).first()
    return last.error if last is not None and last.status == IndexBuild.Status.FAILED else ""


def _state(current: BuildSummary | None, running, embedded: int, pending: int, fresh: int) -> IndexState:
    if running is not None:
        return IndexState.BUILDING
    if current is not None and not current.fingerprint_matches:
        return IndexState.MODEL_MISMATCH
    if current is None and embedded == 0:
        return IndexState.EMPTY
    if current is None or pending or fresh:
        return IndexState.STALE
    return IndexState.READY
