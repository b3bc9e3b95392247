"""What the search services share: the model in use, vector (de)serialisation and the index that serves."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.conf import settings

from search.models import IndexBuild


class SearchUnavailable(Exception):
    """There is nothing to search with (no model could be loaded); the message is shown to the user."""


def current_embedder():
    """The process-wide embedder; a model that cannot be loaded makes search unavailable, not a 500."""
    from search.embedder import get_embedder  # heavy import (torch): only when a model is needed

    try:
        return get_embedder()
    except SearchUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - any loading failure means "no model", reported as such
        raise SearchUnavailable(f"The image model could not be loaded: {exc}") from exc


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
    """The published index the readers use now and the build row that produced it (if known)."""

    reader: object  # search.index.IndexReader
    build: IndexBuild | None
    fingerprint: str
    version: str


def serving_index() -> ServingIndex | None:
    """The current published index, whatever model built it (callers compare fingerprints)."""
    from search.index import current_index

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
    return ServingIndex(reader=reader, build=build, fingerprint=manifest.fingerprint, version=version)
