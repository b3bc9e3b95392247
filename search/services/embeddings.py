"""Embedding product photos: one ImageEmbedding row per (image, model fingerprint).

A row is "settled" when it is done or failed for the image's current content (sha256): settled rows
are never recomputed, so every step can be repeated and a bad photo is not retried forever. Storage
errors other than a missing file are transient: they raise EmbeddingStorageError (an OSError) so the
Celery task retries with backoff.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError
from django.db.models import F, QuerySet

from catalog.models import ProductImage
from search.embedder import current_embedder
from search.models import ImageEmbedding
from shop_search.storage import STORAGE_ERRORS

from .projected_vectors import projected_from_backbone
from .state import ID_CHUNK, loaded_fingerprint, vector_to_bytes

logger = logging.getLogger(__name__)

# progress(done, failed, total): cumulative counts, for tqdm bars and IndexBuild progress.
Progress = Callable[[int, int, int], None]
DECODE_WORKERS = 2  # threads decoding the next batch while the model runs (this machine: 2 cores)


class EmbeddingStorageError(OSError):
    """The photo file could not be read for a reason that may heal (I/O, network storage)."""


@dataclass
class EmbedSummary:
    embedded: int = 0
    failed: int = 0
    skipped: int = 0  # already settled for the current content and model


def images_reembed_request(*, image_ids: Iterable[int]) -> int:
    """Queues these photos for embedding again (admin "re-embed"). Up-to-date vectors are kept; failed
    ones count as settled and would be skipped, so they are forgotten first. Returns how many were."""
    from search.tasks import embed_images

    ids = sorted(set(image_ids))
    retried = ImageEmbedding.objects.filter(image_id__in=ids, status=ImageEmbedding.Status.FAILED).delete()[0]
    if ids:
        embed_images.delay_on_commit(ids)
    return retried


# Set while a caller embeds the photos it stores itself (embedding_inline): stored ids are collected here.
_stored_inline: ContextVar[list[int] | None] = ContextVar("stored_inline", default=None)


def stored_photo_embed_request(*, image_id: int) -> None:
    """A photo was stored (catalog.hooks.photo_stored, after the commit): queue its embedding, unless
    the caller embeds it inline (embedding_inline), which then queues only what it left undone."""
    collected = _stored_inline.get()
    if collected is not None:
        collected.append(image_id)
    else:
        stale_images_embed_request(image_ids=[image_id])


@contextmanager
def embedding_inline() -> Iterator[list[int]]:
    """For a caller that stores photos and then embeds them itself (load_demo): photos stored inside are
    not queued one by one. On leaving, those still without a fresh vector (the inline step failed, or
    did not run) are queued in one task, so nothing is lost and nothing is embedded twice."""
    collected: list[int] = []
    token = _stored_inline.set(collected)
    try:
        yield collected
    finally:
        _stored_inline.reset(token)
        stale_images_embed_request(image_ids=collected)


def stale_images_embed_request(*, image_ids: Iterable[int]) -> list[int]:
    """Queues the embedding of those photos that lack a fresh (settled) vector; returns their ids.

    Freshness is checked against the model this process has loaded; a process without one (the web
    process before its first search) queues them all and the task skips whatever is settled by then."""
    ids = sorted(set(image_ids))
    fingerprint = loaded_fingerprint()
    if fingerprint is not None:
        fresh: set[int] = set()
        for chunk in _chunks(ids, ID_CHUNK):
            fresh.update(
                settled_embeddings(fingerprint).filter(image_id__in=chunk).values_list("image_id", flat=True)
            )
        ids = [pk for pk in ids if pk not in fresh]
    if ids:
        from search.tasks import embed_image, embed_images

        # Callers run after their photos' commit (the receiver is sent on commit; embedding_inline
        # ends after the caller's transactions), so the worker finds the rows. One message for many.
        if len(ids) == 1:
            embed_image.delay(ids[0])
        else:
            embed_images.delay(ids)
    return ids


def settled_embeddings(fingerprint: str) -> QuerySet[ImageEmbedding]:
    """Embeddings that need no more work: done or failed for the image's current content."""
    return ImageEmbedding.objects.filter(
        fingerprint=fingerprint,
        status__in=[ImageEmbedding.Status.DONE, ImageEmbedding.Status.FAILED],
        content_sha256=F("image__sha256"),
    )


def pending_images(fingerprint: str) -> QuerySet[ProductImage]:
    """Photos that still need a vector under this model (new, changed, or never embedded by it)."""
    settled = settled_embeddings(fingerprint).values("image_id")
    return ProductImage.objects.exclude(pk__in=settled)


def image_embed(*, image_id: int, schedule_build: bool = True) -> ImageEmbedding | None:
    """Embeds one photo (no-op when settled). Returns None when the photo no longer exists."""
    images_embed(image_ids=[image_id], schedule_build=schedule_build)
    embedder = current_embedder()
    return ImageEmbedding.objects.filter(image_id=image_id, fingerprint=embedder.fingerprint).first()


def images_embed(
    *, image_ids: Iterable[int], progress: Progress | None = None, schedule_build: bool = True
) -> EmbedSummary:
    """Embeds many photos in model-sized batches, decoding the next batch while the model runs."""
    embedder = current_embedder()
    ids = sorted(set(image_ids))
    summary = EmbedSummary()
    todo: list[ProductImage] = []
    for chunk in _chunks(ids, ID_CHUNK):
        todo += list(pending_images(embedder.fingerprint).filter(pk__in=chunk).order_by("pk"))
    summary.skipped = len(ids) - len(todo)
    todo, summary.embedded = projected_from_backbone(todo, embedder)  # a projection: no backbone pass
    _embed_images(todo, embedder, summary, progress)
    if summary.embedded or summary.failed:
        from .stores import shared_store_sync

        shared_store_sync(embedder)  # hnsw, milvus: this worker writes, the new vectors are searchable now
    if schedule_build and summary.embedded:
        from .build_queue import index_build_schedule_if_stale

        index_build_schedule_if_stale()
    return summary


def catalog_embed_pending(*, progress: Progress | None = None, schedule_build: bool = False) -> EmbedSummary:
    """Embeds every photo lacking a settled embedding under the current model (e.g. after a model switch)."""
    embedder = current_embedder()
    ids = list(pending_images(embedder.fingerprint).order_by("pk").values_list("pk", flat=True))
    return images_embed(image_ids=ids, progress=progress, schedule_build=schedule_build)


def _embed_images(
    todo: list[ProductImage], embedder, summary: EmbedSummary, progress: Progress | None
) -> None:
    from search.embedding import iter_batches

    total = summary.embedded + len(todo)  # those projected from stored vectors are done already
    if progress:
        progress(summary.embedded, 0, total)
    batches = iter_batches(
        todo, lambda image: _prepare(image, embedder), batch_size=embedder.batch_size, workers=DECODE_WORKERS
    )
    try:
        for batch in batches:
            vectors = embedder.embed_tensor(batch.tensor) if batch.tensor is not None else []
            _store_batch(batch.items, vectors, batch.failures, embedder.fingerprint, summary)
            if progress:
                progress(summary.embedded, summary.failed, total)
    except _TransientRead as exc:
        raise EmbeddingStorageError(str(exc)) from exc.__cause__


class _TransientRead(Exception):
    """Not a ValueError/OSError on purpose: iter_batches would record those as a bad photo."""


def _prepare(image: ProductImage, embedder):
    """Reads and decodes one photo into the model's input (runs in a decoding thread)."""
    from search.embedding import ImageDecodeError

    try:
        raw = _read_photo(image)
    except FileNotFoundError as exc:
        raise ImageDecodeError(f"The photo file {image.image.name!r} is missing from storage.") from exc
    except STORAGE_ERRORS as exc:  # a disk error, or an object store that is down (botocore's errors)
        raise _TransientRead(f"Could not read photo {image.image.name!r}: {exc}") from exc
    return embedder.load_pixels(raw, max_pixels=settings.CATALOG_IMAGE_MAX_PIXELS)


def _read_photo(image: ProductImage) -> bytes:
    if not image.image.name:
        raise FileNotFoundError(f"photo {image.pk} has no file")
    with image.image.storage.open(image.image.name, "rb") as handle:
        return handle.read()


def _store_batch(items, vectors, failures, fingerprint: str, summary: EmbedSummary) -> None:
    for image, vector in zip(items, vectors, strict=True):
        _store(image, fingerprint, ImageEmbedding.Status.DONE, vector=vector)
        summary.embedded += 1
    for image, exc in failures:
        reason = str(exc) or exc.__class__.__name__
        logger.warning("Photo %s cannot be embedded: %s", image.pk, reason)
        _store(image, fingerprint, ImageEmbedding.Status.FAILED, error=reason)
        summary.failed += 1


def _store(image: ProductImage, fingerprint: str, status: str, *, vector=None, error: str = "") -> None:
    previous = ImageEmbedding.objects.filter(image_id=image.pk, fingerprint=fingerprint).first()
    values = {
        "content_sha256": image.sha256,
        "status": status,
        "vector": vector_to_bytes(vector) if vector is not None else None,
        "dim": int(len(vector)) if vector is not None else 0,
        "error": error,
        "attempts": (previous.attempts if previous else 0) + 1,
    }
    try:
        ImageEmbedding.objects.update_or_create(image_id=image.pk, fingerprint=fingerprint, defaults=values)
    except IntegrityError:
        # The photo was deleted while we embedded it: nothing left to store.
        logger.info("Photo %s vanished while being embedded", image.pk)


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + size]
