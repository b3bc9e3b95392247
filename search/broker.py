"""The Celery broker as operations see it: can this process reach it, and how many tasks wait in it.

For /readyz and /metrics (docs/operations.md). Only the transports this project documents are looked
into: Redis (production), the filesystem broker (the demo, one machine) and memory:// (tests); any
other kombu URL is checked by opening a connection, and its queue is not measured.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

TIMEOUT_SECONDS = 2.0  # a probe must answer quickly even when the broker host is gone
# kombu's Redis transport keeps a queue's messages in one list per priority step: the queue's own
# name for priority 0 and "<queue>\x06\x16<step>" for the others (kombu.transport.redis).
REDIS_PRIORITY_SEP = "\x06\x16"
REDIS_PRIORITY_STEPS = (3, 6, 9)

_redis_clients: dict[str, object] = {}


@dataclass(frozen=True)
class BrokerCheck:
    ok: bool
    transport: str  # the URL's scheme: never the URL itself, which may hold a password
    detail: str = ""


def broker_transport(url: str | None = None) -> str:
    url = url if url is not None else settings.CELERY_BROKER_URL
    return urlsplit(url).scheme or url.partition(":")[0]


def default_queue() -> str:
    return getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")


def broker_check() -> BrokerCheck:
    """Whether tasks (embedding, builds) can be sent from here. Never raises."""
    url = settings.CELERY_BROKER_URL
    transport = broker_transport(url)
    try:
        if transport in ("redis", "rediss"):
            _redis(url).ping()
        elif transport == "filesystem":
            folder = _filesystem_folder()
            if folder is None or not os.access(folder, os.W_OK | os.X_OK):
                return BrokerCheck(
                    False, transport, f"The broker folder {folder} is missing or not writable."
                )
        elif transport != "memory":
            from kombu import Connection

            with Connection(url, connect_timeout=TIMEOUT_SECONDS) as connection:
                connection.ensure_connection(max_retries=1, timeout=TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "not reachable"
        return BrokerCheck(
            False, transport, f"The task broker cannot be reached: {type(exc).__name__}: {exc}"
        )
    return BrokerCheck(True, transport)


def queue_length(queue: str | None = None) -> int | None:
    """Tasks waiting in the queue, not yet taken by a worker; None when this transport is not measured.

    Redis: LLEN of the queue's lists (a task a worker has taken is no longer counted, even while it
    runs). Filesystem broker: the message files of the queue in its folder. May raise on a broker
    error (the metrics collector reports it)."""
    queue = queue or default_queue()
    url = settings.CELERY_BROKER_URL
    transport = broker_transport(url)
    if transport in ("redis", "rediss"):
        keys = [queue, *(f"{queue}{REDIS_PRIORITY_SEP}{step}" for step in REDIS_PRIORITY_STEPS)]
        pipeline = _redis(url).pipeline(transaction=False)
        for key in keys:
            pipeline.llen(key)
        return int(sum(pipeline.execute()))
    if transport == "filesystem":
        folder = _filesystem_folder()
        if folder is None:
            return None
        wanted = f"{queue}.msg"  # kombu names them "<time>_<uuid>.<queue>.msg"
        with os.scandir(folder) as entries:
            return sum(1 for entry in entries if entry.name.partition(".")[2] == wanted)
    return None


def _filesystem_folder() -> Path | None:
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {}
    folder = options.get("data_folder_in")
    return Path(folder) if folder else None


def _redis(url: str):
    """One client (connection pool) per URL and process."""
    client = _redis_clients.get(url)
    if client is None:
        import redis

        client = redis.Redis.from_url(
            url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
        )
        _redis_clients[url] = client
    return client
