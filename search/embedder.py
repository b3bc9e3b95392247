"""The process-wide Embedder, built once from settings (web process, Celery worker, commands)."""

from __future__ import annotations

import os
import threading

from django.conf import settings

from search.embedding import Embedder, EmbedderConfig, build_embedder

_lock = threading.Lock()
_embedder: Embedder | None = None
_built_in_pid: int | None = None


def embedder_config() -> EmbedderConfig:
    """The embedding settings (SEARCH_*) as a plain config for the Django-free engine."""
    return EmbedderConfig(
        backbone=settings.SEARCH_BACKBONE,
        weights_path=settings.SEARCH_WEIGHTS_PATH,
        torch_home=settings.SEARCH_TORCH_HOME,
        allow_download=settings.SEARCH_ALLOW_DOWNLOAD,
        download_timeout=settings.SEARCH_DOWNLOAD_TIMEOUT,
        untrained=settings.SEARCH_UNTRAINED,
        threads=settings.SEARCH_TORCH_THREADS,
        image_size=settings.SEARCH_IMAGE_SIZE,
        resize=settings.SEARCH_RESIZE,
        center_crop=settings.SEARCH_CENTER_CROP,
        batch_size=settings.SEARCH_BATCH_SIZE,
    )


def get_embedder() -> Embedder:
    """The Embedder for this process, loaded on first use (a few seconds) and then reused."""
    global _embedder, _built_in_pid
    with _lock:
        # A forked child (prefork worker) builds its own: torch state does not survive fork safely.
        if _embedder is None or _built_in_pid != os.getpid():
            _embedder = build_embedder(embedder_config())
            _built_in_pid = os.getpid()
        return _embedder


def reset_embedder() -> None:
    """Forget the cached Embedder (tests that change SEARCH_* settings)."""
    global _embedder, _built_in_pid
    with _lock:
        _embedder = None
        _built_in_pid = None


def loaded_embedder() -> Embedder | None:
    """The Embedder if this process has loaded it already, without loading it or waiting for a load in
    progress (readiness checks). No lock: get_embedder holds it for the whole load, and reading two
    module globals is atomic enough for a yes/no answer."""
    embedder, pid = _embedder, _built_in_pid
    return embedder if embedder is not None and pid == os.getpid() else None
