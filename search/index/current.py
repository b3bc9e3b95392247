"""The process-wide view of the published build, swapped to a new build without restart.

A build that fails verification (see ``integrity``) is never served: the newest older build under
``builds/`` that verifies serves instead, or nothing (callers then search stored vectors exactly).
``index_health`` says which, for status pages and metrics.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .manifest import IndexCorrupt
from .publish import TMP_MARKER, build_path, builds_dir, current_version
from .reader import IndexReader

logger = logging.getLogger(__name__)

# A build that could not be read for a reason other than its content (permissions, too many open
# files) is tried again after this long; a damaged one only when another build is published.
RETRY_UNREADABLE_SECONDS = 30.0


@dataclass(frozen=True)
class IndexHealth:
    """Which build serves under an index root, and why not the published one."""

    published: str | None = None  # the build ``current`` points at
    serving: str | None = None  # the build queries use; None: no index (exact search over stored vectors)
    damaged: tuple[str, ...] = ()  # builds found unusable, the published one first
    problem: str = ""  # for people (status, admin); "" when the published build serves


@dataclass(frozen=True)
class _Resolved:
    reader: IndexReader | None
    health: IndexHealth
    retry_at: float | None = None  # time.monotonic() after which the published build is tried again


_lock = threading.Lock()
_resolved: dict[str, _Resolved] = {}


def current_index(root: Path) -> IndexReader | None:
    """The reader of the published build under ``root``, or of the build serving in its place when
    it is damaged; None when nothing is published or no build is usable.

    Each call does one readlink and, on the cached reader, two fstat calls (microseconds), so a new
    build, or a file truncated under the reader, is noticed by the next query. A previous reader is
    only dropped from the cache, never closed: queries still holding it finish on its memory maps.
    """
    key = os.path.abspath(root)
    version = current_version(Path(root))
    if version is None:
        return None
    resolved = _resolved.get(key)
    if resolved is not None and _still_good(resolved, version):
        return resolved.reader
    with _lock:
        resolved = _resolved.get(key)
        if resolved is not None and _still_good(resolved, version):
            return resolved.reader
        resolved = _resolve(Path(root), version, resolved.reader if resolved else None)
        _resolved[key] = resolved
        return resolved.reader


def index_health(root: Path) -> IndexHealth:
    """What serves under ``root`` now (resolving it first, as a query would).

    The hook for metrics (none are exported yet): e.g. a gauge ``search_index_degraded`` = bool(problem)
    and an info metric with the published and serving versions.
    """
    current_index(root)
    resolved = _resolved.get(os.path.abspath(root))
    version = current_version(Path(root))
    if resolved is None or resolved.health.published != version:
        return IndexHealth(published=version)
    return resolved.health


def _still_good(resolved: _Resolved, version: str) -> bool:
    if resolved.health.published != version:
        return False
    if resolved.retry_at is not None and time.monotonic() >= resolved.retry_at:
        return False
    return resolved.reader is None or not resolved.reader.damage()


def _resolve(root: Path, version: str, previous: IndexReader | None) -> _Resolved:
    reusable = previous if previous is not None and not previous.damage() else None
    try:
        reader = _open(root, version, reusable)
        return _Resolved(reader, IndexHealth(published=version, serving=version))
    except IndexCorrupt as exc:
        what, retry_at = f"is damaged ({exc})", None
    except OSError as exc:
        what, retry_at = f"cannot be read ({_os_reason(exc)})", time.monotonic() + RETRY_UNREADABLE_SECONDS
    logger.error("index build %s %s", build_path(root, version), what)
    damaged = [version]
    for older in _older_builds(root, version):
        try:
            reader = _open(root, older, reusable)
        except (IndexCorrupt, OSError) as exc:
            logger.error("index build %s cannot serve instead either: %s", build_path(root, older), exc)
            damaged.append(older)
            continue
        problem = f"The published index build {version} {what}; serving the previous build {older}."
        return _Resolved(reader, IndexHealth(version, older, tuple(damaged), problem), retry_at)
    problem = (
        f"The published index build {version} {what} and no earlier build is intact; searches compare "
        "stored vectors exactly until a new build is published."
    )
    return _Resolved(None, IndexHealth(version, None, tuple(damaged), problem), retry_at)


def _open(root: Path, version: str, reusable: IndexReader | None) -> IndexReader:
    if reusable is not None and reusable.version == version:
        return reusable  # verified when it was opened, and its sizes still match
    return IndexReader(build_path(root, version))


def _older_builds(root: Path, version: str) -> list[str]:
    """Complete builds older than ``version``, newest first (version names sort by build time)."""
    try:
        names = [p.name for p in builds_dir(root).iterdir() if p.is_dir()]
    except OSError:
        return []
    return sorted(
        (n for n in names if TMP_MARKER not in n and not n.startswith(".") and n < version), reverse=True
    )


def _os_reason(exc: OSError) -> str:
    """The error without the server path it carries."""
    name = Path(exc.filename).name if exc.filename else "a file"
    return f"{name}: {exc.strerror or exc}"
