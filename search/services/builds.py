"""Index builds: requested (coalesced), run by one worker at a time, published atomically.

Policy (documented in docs): a build first embeds every pending photo under the current model, so a
finished build covers the whole catalog; then it indexes the done vectors of active products only.
At most one build runs: a request while one is queued returns that one; a request while one only runs
adds a single queued follow-up, enqueued when the running build ends. A build that has been "running"
for longer than BUILD_STALE_AFTER is taken as lost (worker killed) and marked failed.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from search.models import ImageEmbedding, IndexBuild
from search.selectors import fresh_embeddings

from .embeddings import catalog_embed_pending
from .state import current_embedder, serving_index, vectors_from_rows

logger = logging.getLogger(__name__)

BUILD_STALE_AFTER = timedelta(hours=6)
# A rebuild is requested automatically when this many embeddings are newer than the serving build
# (absolute), or more than this share of the build's vectors: small shops rebuild often, big ones
# in batches; in between, new photos are searched exactly and are findable at once.
REBUILD_MIN_FRESH = 500
REBUILD_FRESH_SHARE = 0.10
_LOCK_KEY = 0x5EA2C4  # PostgreSQL advisory lock id for build bookkeeping


class BuildFailed(Exception):
    """The build cannot produce an index (e.g. nothing to index); the message is stored on the build."""


def index_build_request(*, enqueue: bool = True) -> IndexBuild:
    """Asks for a rebuild; coalesces with a queued build so at most one is waiting.

    enqueue=False is for callers that run the build inline right after (the build_index command)."""
    with transaction.atomic():
        _lock_builds()
        _expire_lost_builds()
        queued = _oldest_queued()
        if queued is not None:
            return queued
        build = IndexBuild.objects.create(status=IndexBuild.Status.QUEUED)
        if enqueue and not IndexBuild.objects.filter(status=IndexBuild.Status.RUNNING).exists():
            _enqueue(build)
        # Otherwise the running build enqueues this follow-up when it ends.
        return build


def index_build_run(*, build_id: int, progress=None) -> IndexBuild | None:
    """Runs a queued build. Returns None if the build does not exist; a build that cannot start
    (another is running, or it already ran) is returned unchanged."""
    build = IndexBuild.objects.filter(pk=build_id).first()
    if build is None:
        return None
    if not _claim(build_id):
        build.refresh_from_db()
        return build
    build.refresh_from_db()
    try:
        _run(build, progress)
    except Exception as exc:
        logger.exception("Index build %s failed", build.pk)
        _finish(build, IndexBuild.Status.FAILED, error=_describe(exc))
    else:
        _finish(build, IndexBuild.Status.SUCCEEDED)
        _cleanup()
    _enqueue_follow_up()
    return build


def index_build_schedule_if_stale() -> IndexBuild | None:
    """Requests a rebuild when the serving index was built by another model (the build re-embeds the
    whole catalog under the current one), or when many embeddings are not in the serving index yet."""
    serving = serving_index()
    if serving is not None and serving.fingerprint != current_embedder().fingerprint:
        return index_build_request()  # coalesced: at most one queued build
    fresh, indexed = _fresh_embedding_count()
    if fresh == 0:
        return None
    if indexed and fresh <= REBUILD_MIN_FRESH and fresh <= indexed * REBUILD_FRESH_SHARE:
        return None
    return index_build_request()


def _run(build: IndexBuild, progress) -> None:
    from search.embedding import embedder_spec
    from search.index import index_build

    embedder = current_embedder()
    build.fingerprint = embedder.fingerprint
    build.save(update_fields=["fingerprint"])
    catalog_embed_pending(progress=_build_progress(build, progress))
    ids, vectors, until = _indexable_vectors(embedder.fingerprint, embedder.dim)
    if not ids:
        raise BuildFailed("Nothing to index: no active product has an embedded photo.")
    params = {
        "n_trees": settings.SEARCH_ANNOY_TREES,
        "pca_dim": settings.SEARCH_PCA_DIM,
        "model": embedder.name,
    }
    manifest = index_build(
        vectors,
        ids,
        root=settings.SEARCH_INDEX_DIR,
        fingerprint=embedder.fingerprint,
        n_trees=settings.SEARCH_ANNOY_TREES,
        pca_dim=settings.SEARCH_PCA_DIM,
        # How to load this exact model again: the index keeps serving after a model switch.
        extra={"build_id": build.pk, "model": embedder.name, "embedder": embedder_spec(embedder)},
    )
    _record_manifest(build, manifest, params, until, len(ids))


def _indexable_vectors(fingerprint: str, dim: int):
    rows = list(
        ImageEmbedding.objects.filter(
            fingerprint=fingerprint,
            status=ImageEmbedding.Status.DONE,
            image__product__is_active=True,
        )
        .order_by("image_id")
        .values_list("image_id", "vector", "updated_at")
    )
    ids = [row[0] for row in rows]
    until = max((row[2] for row in rows), default=None)
    return ids, vectors_from_rows([row[1] for row in rows], dim), until


def _record_manifest(build: IndexBuild, manifest, params: dict, until, count: int) -> None:
    build.version = str(getattr(manifest, "version", ""))
    build.vectors = int(getattr(manifest, "count", count))
    build.dim = int(getattr(manifest, "dim", 0))
    build.size_bytes = int(getattr(manifest, "size_bytes", 0))
    build.params = {**params, **_manifest_params(manifest)}
    build.embeddings_until = until
    build.save(update_fields=["version", "vectors", "dim", "size_bytes", "params", "embeddings_until"])


def _manifest_params(manifest) -> dict:
    params = getattr(manifest, "params", None)
    return dict(params) if isinstance(params, dict) else {}


def _build_progress(build: IndexBuild, progress):
    def report(done: int, failed: int, total: int) -> None:
        IndexBuild.objects.filter(pk=build.pk).update(total=total, done=done, failed=failed)
        build.total, build.done, build.failed = total, done, failed
        if progress:
            progress(done, failed, total)

    return report


def _claim(build_id: int) -> bool:
    """Marks the build running only if it is queued and no other build runs (atomically)."""
    with transaction.atomic():
        _lock_builds()
        _expire_lost_builds()
        if IndexBuild.objects.filter(status=IndexBuild.Status.RUNNING).exists():
            return False
        claimed = IndexBuild.objects.filter(pk=build_id, status=IndexBuild.Status.QUEUED).update(
            status=IndexBuild.Status.RUNNING, started_at=timezone.now()
        )
        return claimed == 1


def _lock_builds() -> None:
    """Serialises build bookkeeping across workers. PostgreSQL: a transaction-level advisory lock.
    SQLite: the first write in the transaction takes the database write lock (a dummy update)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
    else:
        IndexBuild.objects.filter(pk=-1).update(status=IndexBuild.Status.QUEUED)


def _expire_lost_builds() -> None:
    cutoff = timezone.now() - BUILD_STALE_AFTER
    IndexBuild.objects.filter(status=IndexBuild.Status.RUNNING, started_at__lt=cutoff).update(
        status=IndexBuild.Status.FAILED,
        error="The build stopped reporting (worker lost); a new build was allowed to start.",
        finished_at=timezone.now(),
    )


def _finish(build: IndexBuild, status: str, *, error: str = "") -> None:
    build.status, build.error, build.finished_at = status, error, timezone.now()
    build.save(update_fields=["status", "error", "finished_at"])


def _enqueue_follow_up() -> None:
    follow_up = _oldest_queued()
    if follow_up is not None:
        _enqueue(follow_up)


def _oldest_queued() -> IndexBuild | None:
    return IndexBuild.objects.filter(status=IndexBuild.Status.QUEUED).order_by("requested_at", "id").first()


def _enqueue(build: IndexBuild) -> None:
    from search.tasks import build_index

    build_index.delay_on_commit(build.pk)


def _cleanup() -> None:
    from search.index import index_cleanup

    try:
        index_cleanup(settings.SEARCH_INDEX_DIR, keep=settings.SEARCH_INDEX_KEEP_BUILDS)
    except OSError:
        # Old builds left on disk cost space, not correctness: the next build retries the clean-up.
        logger.warning("Could not remove old index builds", exc_info=True)


def _fresh_embedding_count() -> tuple[int, int]:
    """(embeddings not in the serving index, vectors in it) under the current model."""
    embedder = current_embedder()
    serving = serving_index()
    fresh = fresh_embeddings(embedder.fingerprint, serving).count()
    same_model = serving is not None and serving.fingerprint == embedder.fingerprint and serving.build
    return fresh, serving.build.vectors if same_model else 0


def _describe(exc: Exception) -> str:
    message = str(exc) or exc.__class__.__name__
    return message if isinstance(exc, BuildFailed) else f"{exc.__class__.__name__}: {message}"
