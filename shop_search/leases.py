"""Leases on work a Celery worker claims (index builds, import jobs), so a killed worker is noticed.

A worker that claims a row writes ``lease_owner`` (host:pid:token, one per claim) and ``heartbeat_at``.
While the work runs, a background thread renews ``heartbeat_at`` every lease/4 seconds: long single
calls (Annoy's build, a model batch, both release the GIL) need not report anything themselves. A row
whose heartbeat is older than the lease was lost (the worker was killed, or cut off from the database):
the app's reaper marks it failed or runs it again.

Renewal only succeeds while the row is still "running" under this owner. A worker that was presumed
dead finds out at its next renewal, and ``Lease.check()`` (called between steps) stops the work before
it overwrites the outcome of whoever took over.

Used by both apps (``catalog`` must not import ``search``), hence here in the project package.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from datetime import datetime, timedelta

from django.db import DatabaseError, connections
from django.db.models import Model
from django.utils import timezone

logger = logging.getLogger(__name__)

# The start of every error written for lost work (shown in the admin, the API and status).
LOST_LEASE = "The worker running it stopped (lost lease)"
MIN_RENEW_SECONDS = 0.25


class LeaseLost(Exception):
    """Another worker (or the reaper) took this work over: stop without writing an outcome."""


def lease_owner() -> str:
    """Who claims: host and process for the operator, plus a token so two claims never share a name."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def lease_cutoff(seconds: float, now: datetime | None = None) -> datetime:
    """Heartbeats older than this belong to lost work."""
    return (now or timezone.now()) - timedelta(seconds=seconds)


def lost_lease_reason(last_beat: datetime | None, seconds: float, detail: str = "") -> str:
    since = last_beat.strftime("%Y-%m-%d %H:%M:%S UTC") if last_beat else "its start"
    reason = f"{LOST_LEASE}: no heartbeat since {since} (lease {seconds:g} s)."
    return f"{reason} {detail}" if detail else reason


class Lease:
    """Keeps one claimed row's lease alive from a background thread while the ``with`` block runs.

    The model needs ``status`` (with ``Status.RUNNING``), ``lease_owner`` and ``heartbeat_at``.
    """

    def __init__(self, model: type[Model], pk: int, *, owner: str, seconds: float) -> None:
        self.model, self.pk, self.owner = model, pk, owner
        self.every = max(seconds / 4, MIN_RENEW_SECONDS)
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def renew(self) -> bool:
        """One heartbeat. False (and ``lost`` set) when the row is no longer running under this owner."""
        running = self.model.objects.filter(pk=self.pk, status="running", lease_owner=self.owner)
        if running.update(heartbeat_at=timezone.now()) == 0:
            self.lost = True
        return not self.lost

    def check(self) -> None:
        """Raise LeaseLost if a renewal found the work taken over; call between steps."""
        if self.lost:
            raise LeaseLost(f"{self.model.__name__} {self.pk} is no longer held by {self.owner}")

    def __enter__(self) -> Lease:
        self._thread = threading.Thread(target=self._beat, name=f"lease-{self.pk}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self.every):
                try:
                    if not self.renew():
                        logger.warning("%s %s: lease lost, the work stops", self.model.__name__, self.pk)
                        return
                except DatabaseError:
                    # The database may come back before the lease runs out: keep trying.
                    logger.warning("%s %s: heartbeat failed", self.model.__name__, self.pk, exc_info=True)
        finally:
            connections.close_all()  # this thread's connections only
