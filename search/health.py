"""Is this web process ready to answer searches? What /readyz reports (docs/operations.md).

Each check is cheap and never waits for something slow: the model is reported "loading" while it
loads (started here in the background if nothing loaded it yet, e.g. under runserver), the index is
what this process serves now, the database answers one SELECT 1 and the broker a ping, each with a
short timeout. A process is ready when every check is; a published index build that cannot be served
counts against it, but a previous good build serving in its place, or no index at all yet (searches
then compare stored vectors exactly), does not.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection

from search.broker import broker_check

MODEL_RETRY_SECONDS = 30.0  # a model that failed to load is tried again after this long


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str = ""  # for people: why not ready, or what is degraded although ready
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Readiness:
    checks: dict[str, Check]

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks.values())


def readiness() -> Readiness:
    return Readiness(
        {
            "model": model_check(),
            "index": index_check(),
            "database": database_check(),
            "broker": _broker(),
        }
    )


class _ModelLoader:
    """Loads the configured model in a background thread, once at a time; remembers the last failure."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.error = ""
        self.failed_at = 0.0

    def start(self) -> None:
        with self._lock:
            if self.thread is not None and self.thread.is_alive():
                return
            if self.error and time.monotonic() - self.failed_at < MODEL_RETRY_SECONDS:
                return
            self.thread = threading.Thread(target=self._load, name="readyz-model-load", daemon=True)
            self.thread.start()

    @property
    def loading(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        """Tests: until the load started by start() has ended."""
        if self.thread is not None:
            self.thread.join(timeout)

    def _load(self) -> None:
        from search.embedder import SearchUnavailable, current_embedder

        try:
            current_embedder()
        except SearchUnavailable as exc:
            self.error, self.failed_at = str(exc), time.monotonic()
        else:
            self.error = ""


model_loader = _ModelLoader()


def model_check() -> Check:
    from search.embedder import loaded_embedder

    embedder = loaded_embedder()
    if embedder is not None:
        facts = {name: getattr(embedder, name) for name in ("name", "fingerprint", "fallback", "untrained")}
        return Check(True, facts=facts)
    model_loader.start()
    if model_loader.loading:
        return Check(False, "The image model is loading.")
    return Check(False, model_loader.error or "The image model is not loaded.")


def index_check() -> Check:
    """The index build this process serves (published, or the previous one while it is damaged)."""
    from search.services.index_shipping import index_follow_storage
    from search.services.state import serving_index, serving_index_health

    index_follow_storage()  # never waits: a newer shipped build is fetched in the background
    health = serving_index_health()
    facts = {
        "backend": settings.SEARCH_VECTOR_BACKEND,
        "published": health.published,
        "serving": health.serving,
    }
    serving = serving_index() if health.serving else None
    if serving is not None:
        facts.update(vectors=serving.count(), fingerprint=serving.fingerprint)
    if health.published is None:
        return Check(True, "No index is published yet: searches compare the stored vectors exactly.", facts)
    if health.serving is None:
        return Check(False, health.problem or "The published index cannot be read.", facts)
    return Check(True, health.problem, facts)  # problem: the previous build serves (degraded, still ready)


def database_check() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return Check(False, f"The database cannot be reached: {exc}", {"vendor": connection.vendor})
    return Check(True, facts={"vendor": connection.vendor})


def _broker() -> Check:
    result = broker_check()
    return Check(result.ok, result.detail, {"transport": result.transport})
