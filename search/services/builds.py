"""Index builds: requested (coalesced), run by one worker at a time, published atomically.

Policy (documented in docs): a build first embeds every pending photo under the current model, so a
finished build covers the whole catalog; then it indexes the done vectors of active products only.
At most one build runs: a request while one is queued returns that one; a request while one only runs
adds a single queued follow-up, enqueued when the running build ends. Claiming, queueing, leases
(a killed worker's build is failed and the next one runs) and the reaper: search.services.build_queue.
"""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime

from django.conf import settings
from django.utils import timezone

from search.embedder import current_embedder
from search.index.attrs import NO_CATEGORY, Attrs
from search.index.pca import pca_dim_for
from search.models import ImageEmbedding, IndexBuild
from shop_search.leases import Lease, LeaseLost, lease_owner

from .build_queue import (
    build_claim,
    follow_up_enqueue,
)
from .embeddings import catalog_embed_pending
from .index_shipping import index_build_ship, index_storage, index_storage_cleanup
from .state import SHARED_STORE_BACKENDS, vectors_from_rows
from .vector_sync import price_cents

logger = logging.getLogger(__name__)


class BuildFailed(Exception):
    """The build cannot produce an index (e.g. nothing to index); the message is stored on the build."""


def index_build_run(*, build_id: int, progress=None) -> IndexBuild | None:
    """Runs a queued build. Returns None if the build does not exist; a build that cannot start
    (another is running, or it already ran) is returned unchanged."""
    build = IndexBuild.objects.filter(pk=build_id).first()
    if build is None:
        return None
    owner = lease_owner()
    if not build_claim(build_id, owner):
        build.refresh_from_db()
        return build
    build.refresh_from_db()
    try:
        with Lease(IndexBuild, build.pk, owner=owner, seconds=settings.SEARCH_LEASE_SECONDS) as lease:
            _run(build, progress, lease)
    except LeaseLost:
        # Presumed dead and taken over: the build is already failed and the next one enqueued.
        logger.warning("Index build %s lost its lease; stopped without publishing", build.pk)
        build.refresh_from_db()
        return build
    except Exception as exc:
        logger.exception("Index build %s failed", build.pk)
        _finish(build, owner, IndexBuild.Status.FAILED, error=_describe(exc))
    else:
        if _finish(build, owner, IndexBuild.Status.SUCCEEDED):
            _cleanup()
    build.refresh_from_db()
    follow_up_enqueue()
    return build


def _run(build: IndexBuild, progress, lease: Lease) -> None:
    from search.embedding import embedder_spec
    from search.index import index_build

    # Afresh: the build a projection switch requests must not embed under the model switched away from.
    embedder = current_embedder(recheck=True)
    build.fingerprint = embedder.fingerprint
    build.save(update_fields=["fingerprint"])
    catalog_embed_pending(progress=_build_progress(build, progress, lease))
    lease.check()
    if settings.SEARCH_VECTOR_BACKEND in SHARED_STORE_BACKENDS:
        _run_shared_store(build, embedder, lease)
        return
    ids, vectors, attrs, until = _indexable_vectors(embedder.fingerprint, embedder.dim)
    if not ids:
        raise BuildFailed("Nothing to index: no active product has an embedded photo.")
    pca_dim = pca_dim_for(
        len(ids),
        mode=settings.SEARCH_PCA,
        dim=settings.SEARCH_PCA_DIM,
        min_vectors=settings.SEARCH_PCA_MIN_VECTORS,
    )
    params = {
        "backend": "annoy",
        "n_trees": settings.SEARCH_ANNOY_TREES,
        "pca": settings.SEARCH_PCA,
        "pca_dim": pca_dim,
        "model": embedder.name,
    }
    manifest = index_build(
        vectors,
        ids,
        attrs=attrs,
        root=settings.SEARCH_INDEX_DIR,
        fingerprint=embedder.fingerprint,
        n_trees=settings.SEARCH_ANNOY_TREES,
        pca_dim=pca_dim,
        # How to load this exact model again: the index keeps serving after a model switch.
        extra={"build_id": build.pk, "model": embedder.name, "embedder": embedder_spec(embedder)},
        publish=False,
    )
    # Published only while the lease holds: a worker presumed dead must not replace a newer build.
    _publish_if_held(manifest.version, lease)
    _record_manifest(build, manifest, params, until, len(ids))


def _publish_if_held(version: str, lease: Lease) -> None:
    from search.index import index_publish
    from search.index.publish import build_path

    try:
        lease.check()
    except LeaseLost:
        shutil.rmtree(build_path(settings.SEARCH_INDEX_DIR, version), ignore_errors=True)
        raise
    storage = index_storage()
    if storage is not None:
        # Shipped before it is published here: other machines' pointer never names a build they cannot
        # fetch, and a failed upload fails the build (the last good build keeps serving everywhere).
        index_build_ship(storage, settings.SEARCH_INDEX_DIR, version)
    index_publish(settings.SEARCH_INDEX_DIR, version)


def _indexable_vectors(fingerprint: str, dim: int):
    """Done vectors of active products, with their attributes (filters run inside the search)."""
    rows = list(
        ImageEmbedding.objects.filter(
            fingerprint=fingerprint,
            status=ImageEmbedding.Status.DONE,
            image__product__is_active=True,
        )
        .order_by("image_id")
        .values_list(
            "image_id",
            "vector",
            "updated_at",
            "image__product_id",
            "image__product__category_id",
            "image__product__price",
        )
    )
    ids = [row[0] for row in rows]
    until = max((row[2] for row in rows), default=None)
    attrs = Attrs.of(
        [row[3] for row in rows],
        [NO_CATEGORY if row[4] is None else row[4] for row in rows],
        [price_cents(row[5]) for row in rows],
        [True] * len(rows),
    )
    return ids, vectors_from_rows([row[1] for row in rows], dim), attrs, until


def _run_shared_store(build: IndexBuild, embedder, lease: Lease) -> None:
    """Rebuilds the model's hnsw store from scratch (compacted), or reconciles its Milvus collection with
    the database in full, and makes it the serving one (the alias swap)."""
    indexable = ImageEmbedding.objects.filter(
        fingerprint=embedder.fingerprint, status=ImageEmbedding.Status.DONE, image__product__is_active=True
    )
    if not indexable.exists():
        raise BuildFailed("Nothing to index: no active product has an embedded photo.")
    lease.check()
    if settings.SEARCH_VECTOR_BACKEND == "milvus":
        from .milvus_writer import milvus_rebuild

        store = milvus_rebuild(embedder, before_swap=lease.check)
    else:
        from .hnsw_writer import hnsw_rebuild

        store = hnsw_rebuild(embedder, before_swap=lease.check)
    manifest = store.manifest
    params = {"backend": store.backend, "model": embedder.name, **_manifest_params(manifest)}
    until = datetime.fromtimestamp(store.sync_mark, UTC) if store.sync_mark is not None else None
    _record_manifest(build, manifest, params, until, store.count())
    build.vectors = store.count()  # live vectors (the snapshot may hold deleted rows too)
    build.save(update_fields=["vectors"])


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


def _build_progress(build: IndexBuild, progress, lease: Lease):
    def report(done: int, failed: int, total: int) -> None:
        lease.check()  # stop embedding as soon as a renewal found the build taken over
        IndexBuild.objects.filter(pk=build.pk).update(total=total, done=done, failed=failed)
        build.total, build.done, build.failed = total, done, failed
        if progress:
            progress(done, failed, total)

    return report


def _finish(build: IndexBuild, owner: str, status: str, *, error: str = "") -> bool:
    """Records the outcome unless the build was taken over meanwhile (False then)."""
    finished = IndexBuild.objects.filter(pk=build.pk, status=IndexBuild.Status.RUNNING, lease_owner=owner)
    if finished.update(status=status, error=error, finished_at=timezone.now()) == 0:
        logger.warning("Index build %s was taken over; its outcome (%s) is not recorded", build.pk, status)
        return False
    return True


def _cleanup() -> None:
    from search.index import index_cleanup

    try:
        index_cleanup(settings.SEARCH_INDEX_DIR, keep=settings.SEARCH_INDEX_KEEP_BUILDS)
    except OSError:
        # Old builds left on disk cost space, not correctness: the next build retries the clean-up.
        logger.warning("Could not remove old index builds", exc_info=True)
    storage = index_storage()
    if storage is not None:
        try:
            index_storage_cleanup(storage, keep=settings.SEARCH_INDEX_KEEP_BUILDS)
        except Exception:  # noqa: BLE001 - any storage error (botocore's too): space, not correctness
            logger.warning("Could not remove old index builds from the index storage", exc_info=True)


def _describe(exc: Exception) -> str:
    message = str(exc) or exc.__class__.__name__
    return message if isinstance(exc, BuildFailed) else f"{exc.__class__.__name__}: {message}"
