"""What the search services share: the model in use, vector (de)serialisation and the index that serves."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from django.conf import settings

from search.embedder import current_embedder, loaded_embedder, stored_projection
from search.models import IndexBuild

logger = logging.getLogger(__name__)
ID_CHUNK = 500  # ids per query: stays far below SQLite's bound-parameter limit
# Backends whose store every process shares and the worker writes (no per-process delta, no build needed
# for a save or a delete): the worker syncs them after each change.
SHARED_STORE_BACKENDS = ("hnsw", "milvus")


def loaded_fingerprint() -> str | None:
    """The fingerprint of the model this process has loaded already, or None; never loads one."""
    embedder = loaded_embedder()
    return embedder.fingerprint if embedder is not None else None


def model_warning(model) -> str:
    """The one wording of what a fallback or untrained model means, for the API, the admin and the
    commands ("" for the requested, pretrained model). ``model`` is an Embedder or an IndexStatus.
    Shoppers get a plainer sentence without backbone names (search.views)."""
    if model.untrained:
        return (
            f"Untrained model {model.name}: it runs with untrained, random weights (SEARCH_UNTRAINED), "
            "so results are not meaningful."
        )
    if model.fallback:
        return (
            f"Using the fallback model {model.name} instead of {model.requested}: the weights of "
            f"{model.requested} are not available here, so matches may be less accurate."
        )
    return ""


def vector_to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def vector_from_bytes(data: bytes | memoryview) -> np.ndarray:
    return np.frombuffer(bytes(data), dtype="<f4")


def vectors_from_rows(blobs: list[bytes | memoryview], dim: int) -> np.ndarray:
    """Stacks stored vectors into one (n, dim) float32 matrix."""
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    return np.stack([vector_from_bytes(blob) for blob in blobs]).astype(np.float32, copy=False)


@dataclass(frozen=True)
class ServingIndex:
    """What serves queries now: the published annoy build, or the hnsw store / Milvus collection the
    alias names, and the build row that produced it (if known)."""

    reader: object  # search.index.IndexReader (annoy), search.index.hnsw.HnswStore or .milvus.MilvusStore
    build: IndexBuild | None
    fingerprint: str
    version: str
    backend: str = "annoy"
    until: datetime | None = None  # every embedding changed up to then is in it (None: unknown)

    def count(self) -> int:
        """Live vectors."""
        return self.reader.count() if self.backend != "annoy" else len(self.reader)

    def contains(self, image_ids: list[int]) -> set[int]:
        if self.backend != "annoy":
            return {int(i) for i in self.reader.contains(np.asarray(image_ids, dtype=np.int64))}
        found, _ = self.reader.vectors_for(image_ids)
        return {int(i) for i in found}


def serving_index() -> ServingIndex | None:
    """The index that serves, whatever model built it (callers compare fingerprints): the published
    build, or the previous good build while the published one is damaged (see serving_index_health);
    under the hnsw and milvus backends the store the serving alias names."""
    if settings.SEARCH_VECTOR_BACKEND == "hnsw":
        return _serving_hnsw()
    if settings.SEARCH_VECTOR_BACKEND == "milvus":
        return _serving_milvus()
    from search.index import current_index

    from .index_shipping import index_follow_storage

    index_follow_storage()  # several machines: a build published elsewhere is fetched (in the background)
    reader = current_index(settings.SEARCH_INDEX_DIR)
    if reader is None:
        return None
    manifest = reader.manifest
    version = str(getattr(manifest, "version", ""))
    build = (
        IndexBuild.objects.filter(version=version, status=IndexBuild.Status.SUCCEEDED).first()
        if version
        else None
    )
    until = build.embeddings_until if build is not None else None
    return ServingIndex(
        reader=reader, build=build, fingerprint=manifest.fingerprint, version=version, until=until
    )


def _serving_hnsw() -> ServingIndex | None:
    from .hnsw import hnsw_serving

    return _serving_store(hnsw_serving())


def _serving_milvus() -> ServingIndex | None:
    from .milvus import milvus_serving_problem

    store, problem = milvus_serving_problem()
    if problem:
        logger.error("%s; searches compare stored vectors exactly", problem)
    return _serving_store(store)


def _serving_store(store) -> ServingIndex | None:
    """A shared store (hnsw, milvus) that serves, with the last build that rebuilt it."""
    if store is None:
        return None
    build = (
        IndexBuild.objects.filter(fingerprint=store.fingerprint, status=IndexBuild.Status.SUCCEEDED)
        .exclude(version="")
        .order_by("-finished_at", "-id")
        .first()
    )
    mark = store.sync_mark
    until = datetime.fromtimestamp(mark, UTC) if mark is not None else None
    return ServingIndex(store, build, store.fingerprint, store.version, backend=store.backend, until=until)


def serving_index_health():
    """Which build serves and why not the published one (search.index.IndexHealth): what status shows
    as ``index_problem``, and the hook for metrics."""
    from search.index import IndexHealth, index_health

    if settings.SEARCH_VECTOR_BACKEND == "hnsw":
        from .hnsw import hnsw_serving, serving_store_dir

        store, folder = hnsw_serving(), serving_store_dir()
        if store is not None:
            return IndexHealth(published=store.version, serving=store.version)
        if folder is not None and folder.exists():
            problem = f"The serving hnsw store {folder.name} cannot be read; searches compare stored vectors"
            problem += " exactly."
            return IndexHealth(problem=problem)
        return IndexHealth()
    if settings.SEARCH_VECTOR_BACKEND == "milvus":
        from .milvus import milvus_serving_problem

        store, problem = milvus_serving_problem()
        if store is not None:
            return IndexHealth(published=store.version, serving=store.version)
        return IndexHealth(problem=f"{problem}; searches compare stored vectors exactly." if problem else "")
    return index_health(settings.SEARCH_INDEX_DIR)


_index_model_lock = threading.Lock()
_index_model: tuple[int, str, object] | None = None  # (pid, fingerprint, Embedder or None if unloadable)


def query_embedder(serving: ServingIndex | None = None):
    """The model queries are embedded with: the one that built the serving index.

    After a model switch the published index keeps serving with its own model (loaded once more from
    what its manifest records) until the build under the new model is published; only when there is
    no index, or its model cannot be loaded any more, do queries use the configured model."""
    configured = current_embedder()
    if serving is None or serving.fingerprint == configured.fingerprint:
        return configured
    spec = getattr(serving.reader.manifest, "extra", {}).get("embedder")
    if not spec:
        return configured
    return _index_model_for(serving.fingerprint, spec, configured) or configured


def _same_backbone_model(spec: dict, configured):
    """A switch to or from a projection keeps the backbone: the serving index's model is then the loaded
    backbone with the index's projection or without one, with no second copy of the weights."""
    from search.embedding.projected import ProjectedEmbedder

    backbone = configured.backbone
    projection = _spec_projection(spec)
    model = backbone if projection is None else ProjectedEmbedder(backbone, projection)
    return model if model.fingerprint == spec["fingerprint"] else None


def _spec_projection(spec: dict):
    fingerprint = str(spec.get("projection", ""))
    return stored_projection(fingerprint) if fingerprint else None


def _index_model_for(fingerprint: str, spec: dict, configured):
    global _index_model
    from search.embedding import build_embedder_from_spec

    with _index_model_lock:
        if _index_model is None or _index_model[:2] != (os.getpid(), fingerprint):
            try:
                model = _same_backbone_model(spec, configured) or build_embedder_from_spec(
                    spec,
                    threads=settings.SEARCH_TORCH_THREADS,
                    batch_size=settings.SEARCH_BATCH_SIZE,
                    projection=_spec_projection(spec),
                )
            except Exception:  # noqa: BLE001 - any failure means "serve with the configured model"
                logger.warning("Cannot load the model of the serving index %s", fingerprint, exc_info=True)
                model = None
            _index_model = (os.getpid(), fingerprint, model)  # one old model at most; failures not retried
        return _index_model[2]


def forget_index_model() -> None:
    """Tests that switch models."""
    global _index_model
    with _index_model_lock:
        _index_model = None
