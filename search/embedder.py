"""The process-wide model (the Embedder), built once from settings in each web process, Celery worker
and command. ``current_embedder()`` is the one way to get it.

Cheap to import: torch is imported only when the model is first needed, so commands and code paths
that never embed (migrate, the catalog admin) do not pay for it.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from search.embedding import Embedder, EmbedderConfig

_lock = threading.Lock()
_embedder: Embedder | None = None
_built_in_pid: int | None = None


class SearchUnavailable(Exception):
    """There is nothing to search with (no model could be loaded); the message is shown to the user."""


def embedder_config() -> EmbedderConfig:
    """The embedding settings (SEARCH_*) as a plain config for the Django-free engine."""
    from search.embedding import EmbedderConfig

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


def current_embedder() -> Embedder:
    """The model of this process, loaded on first use (a few seconds) and then reused.

    Raises SearchUnavailable when it cannot be loaded (no weights, a broken file): search is then
    unavailable, which callers report as such, never as a 500."""
    global _embedder, _built_in_pid
    from search.embedding import build_embedder

    with _lock:
        # A forked child (prefork worker) builds its own: torch state does not survive fork safely.
        if _embedder is None or _built_in_pid != os.getpid():
            try:
                _embedder = build_embedder(embedder_config())
            except Exception as exc:  # noqa: BLE001 - any loading failure means "no model", said as such
                raise SearchUnavailable(f"The image model could not be loaded: {exc}") from exc
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
    progress (readiness checks). No lock: current_embedder holds it for the whole load, and reading two
    module globals is atomic enough for a yes/no answer."""
    embedder, pid = _embedder, _built_in_pid
    return embedder if embedder is not None and pid == os.getpid() else None
