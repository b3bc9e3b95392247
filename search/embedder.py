"""The process-wide model (the Embedder), built once from settings in each web process, Celery worker
and command. ``current_embedder()`` is the one way to get it.

When staff switched to a catalog-adapted projection (AdaptedProjection.in_use, search.services.
projections), the model is that backbone followed by the projection (search.embedding.projected); the
weights are loaded once per projection and process. Which one is in use is read from the database (one
indexed query on a tiny table) at most every SEARCH_PROJECTION_CHECK_SECONDS per process (0: on every
call), not on each of the several calls one search makes:

- the process that switches (projection_use / projection_stop) forgets what it read, so it follows the
  switch at once;
- every other process follows within SEARCH_PROJECTION_CHECK_SECONDS. Harmless for searches: queries
  are embedded with the model of the serving index (search.services.state.query_embedder), which
  changes only when the build the switch requested is published;
- a build reads it afresh when it starts (``current_embedder(recheck=True)``), so the build a switch
  requests never embeds under the model switched away from.

Cheap to import: torch is imported only when the model is first needed, so commands and code paths
that never embed (migrate, the catalog admin) do not pay for it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from search.embedding import Embedder, EmbedderConfig
    from search.embedding.adapt import Projection

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_embedder: Embedder | None = None  # the backbone, as the settings name it
_built_in_pid: int | None = None
_current: Embedder | None = None  # what current_embedder last returned (the backbone or projected)
_projections: dict[str, Projection] = {}  # fingerprint -> weights loaded by this process
# Which projection is in use as last read: (pid, when by time.monotonic, (fingerprint, trained-on backbone
# fingerprint) or None for the backbone alone). None: read it on the next call.
_in_use_read: tuple[int, float, tuple[str, str] | None] | None = None
_mismatch_warned: set[str] = set()  # projections said once to be trained on another backbone


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


def current_embedder(*, recheck: bool = False) -> Embedder:
    """The model of this process, loaded on first use (a few seconds) and then reused: the backbone the
    settings name, followed by the projection in use if staff switched to one. ``recheck``: read which
    projection is in use from the database now, whenever it was last read (a build starting).

    Raises SearchUnavailable when it cannot be loaded (no weights, a broken file): search is then
    unavailable, which callers report as such, never as a 500."""
    global _current
    base = backbone_embedder()
    if recheck:
        forget_projection_in_use()
    model = _with_projection_in_use(base)
    _current = model
    return model


def backbone_embedder() -> Embedder:
    """The backbone alone, as the settings name it (what projections are trained on)."""
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


def stored_projection(fingerprint: str) -> Projection | None:
    """The projection with this fingerprint (AdaptedProjection), loaded once per process; None if there
    is no such row. AdaptError (a ValueError) when its stored weights are damaged."""
    from search.embedding.adapt import projection_loads
    from search.models import AdaptedProjection

    if fingerprint in _projections:
        return _projections[fingerprint]
    weights = (
        AdaptedProjection.objects.filter(fingerprint=fingerprint).values_list("weights", flat=True).first()
    )
    if weights is None:
        return None
    projection = projection_loads(bytes(weights))
    _projections[fingerprint] = projection
    return projection


def projection_in_use() -> tuple[str, str] | None:
    """(fingerprint, fingerprint of the backbone it was trained on) of the projection in use, or None for
    the backbone alone: read from the database at most every SEARCH_PROJECTION_CHECK_SECONDS."""
    global _in_use_read
    from django.db import DatabaseError

    from search.models import AdaptedProjection

    now, pid, seen = time.monotonic(), os.getpid(), _in_use_read
    if seen is not None and seen[0] == pid and now - seen[1] < settings.SEARCH_PROJECTION_CHECK_SECONDS:
        return seen[2]
    try:
        rows = AdaptedProjection.objects.filter(in_use=True).values_list(
            "fingerprint", "backbone_fingerprint"
        )
        in_use = rows.first()
    except DatabaseError:
        # Its table not there yet (a command before `migrate`): the backbone alone, as before any switch.
        # Not remembered: the next call asks again.
        logger.debug("Cannot read which projection is in use; using the backbone alone", exc_info=True)
        return None
    _in_use_read = (pid, now, in_use)
    return in_use


def forget_projection_in_use() -> None:
    """Read which projection is in use again on the next call (this process switched, or a test)."""
    global _in_use_read
    _in_use_read = None


def _with_projection_in_use(base: Embedder) -> Embedder:
    in_use = projection_in_use()
    if in_use is None:
        return base
    fingerprint, trained_on = in_use
    if trained_on != base.fingerprint:
        if fingerprint not in _mismatch_warned:  # once per projection and process, not on every call
            _mismatch_warned.add(fingerprint)
            logger.warning(
                "Projection %s in use was trained on %s, but the settings now give %s: using the backbone "
                "alone",
                fingerprint[:16],
                trained_on,
                base.fingerprint,
            )
        return base
    from search.embedding.projected import ProjectedEmbedder

    current = _current
    if current is not None and current.backbone is base and current.projection is not None:
        if current.projection.fingerprint == fingerprint:
            return current
    try:
        projection = stored_projection(fingerprint)
        return base if projection is None else ProjectedEmbedder(base, projection)
    except Exception as exc:  # noqa: BLE001 - damaged weights: no model, said as such
        raise SearchUnavailable(f"The projection in use could not be loaded: {exc}") from exc


def reset_embedder() -> None:
    """Forget the cached Embedder (tests that change SEARCH_* settings)."""
    global _embedder, _built_in_pid, _current
    with _lock:
        _embedder = None
        _built_in_pid = None
        _current = None
        _projections.clear()
        _mismatch_warned.clear()
    forget_projection_in_use()


def loaded_embedder() -> Embedder | None:
    """The Embedder if this process has loaded it already, without loading it or waiting for a load in
    progress (readiness checks). No lock: current_embedder holds it for the whole load, and reading two
    module globals is atomic enough for a yes/no answer."""
    embedder, pid = _current or _embedder, _built_in_pid
    return embedder if embedder is not None and pid == os.getpid() else None
