"""Where builds live and which one is served.

Layout under ``root``::

    builds/<version>/            complete builds (manifest.json written last), read-only (0444 / dir 0555)
    builds/<version>.tmp-<pid>/  a build in progress (or left by a killed process)
    current -> builds/<version>  the published build: a symlink swapped with os.replace
"""

from __future__ import annotations

import calendar
import os
import secrets
import shutil
import time
from pathlib import Path

from .manifest import fsync_path, manifest_read

BUILDS_DIR = "builds"
CURRENT_LINK = "current"
TMP_MARKER = ".tmp-"
_DAY = 24 * 3600
READ_ONLY_FILE = 0o444
READ_ONLY_DIR = 0o555


def builds_dir(root: Path) -> Path:
    return Path(root) / BUILDS_DIR


def build_path(root: Path, version: str) -> Path:
    return builds_dir(root) / version


def current_version(root: Path) -> str | None:
    """The published version, or None when nothing is published (one readlink: cheap to call often)."""
    try:
        target = os.readlink(Path(root) / CURRENT_LINK)
    except (FileNotFoundError, OSError):
        return None
    return Path(target).name


def index_publish(root: Path, version: str) -> None:
    """Make ``builds/<version>`` the served build. Readers see either the old or the new build, never a mix.

    Raises IndexCorrupt when the build is not complete (no valid manifest), so a half-written
    directory can never be published.
    """
    root = Path(root)
    if not version or Path(version).name != version or version.startswith(".") or TMP_MARKER in version:
        raise ValueError(f"{version!r} is not the name of a build directory")
    manifest_read(build_path(root, version))
    tmp_link = root / f".{CURRENT_LINK}{TMP_MARKER}{os.getpid()}-{secrets.token_hex(4)}"
    # Relative target: the index directory can be moved or mounted elsewhere as a whole.
    os.symlink(os.path.join(BUILDS_DIR, version), tmp_link)
    try:
        os.replace(tmp_link, root / CURRENT_LINK)
    except BaseException:
        tmp_link.unlink(missing_ok=True)
        raise
    fsync_path(root)


def index_cleanup(root: Path, keep: int, *, tmp_max_age_seconds: float = 15 * 60) -> list[str]:
    """Remove old builds, keeping the ``keep`` newest and always the published one.

    Also removes interrupted builds (``*.tmp-*``) older than ``tmp_max_age_seconds`` whose building
    process is gone; younger ones may still be running elsewhere. Returns the removed directory names.
    """
    root = Path(root)
    base = builds_dir(root)
    if not base.is_dir():
        return []
    current = current_version(root)
    removed = [p.name for p in _stale_tmp_dirs(base, tmp_max_age_seconds)]
    complete = sorted(p.name for p in base.iterdir() if p.is_dir() and TMP_MARKER not in p.name)
    kept = set(complete[-keep:]) if keep > 0 else set()
    removed += [name for name in complete if name not in kept and name != current]
    removed = [name for name in removed if build_dir_remove(base / name)]
    _remove_stale_links(root, tmp_max_age_seconds)
    return removed


def build_files_seal(build_dir: Path) -> None:
    """Make a complete build's files read-only: a published build is never written again."""
    for path in Path(build_dir).iterdir():
        path.chmod(READ_ONLY_FILE)


def build_dir_remove(build_dir: Path) -> bool:
    """Delete a build directory, read-only (published) or not; True when it is gone."""
    try:
        # Entries of a 0555 directory cannot be unlinked (except by root): make it writable first.
        os.chmod(build_dir, 0o755)
    except FileNotFoundError:
        return True
    except OSError:
        pass  # not ours to chmod: rmtree below reports whether it could go anyway
    shutil.rmtree(build_dir, ignore_errors=True)
    return not os.path.lexists(build_dir)


def _stale_tmp_dirs(base: Path, max_age: float) -> list[Path]:
    cutoff = time.time() - max_age
    return [
        p
        for p in base.iterdir()
        if TMP_MARKER in p.name and p.is_dir() and p.stat().st_mtime < cutoff and not _builder_alive(p.name)
    ]


def _builder_alive(tmp_name: str) -> bool:
    """Whether the process named in ``<version>.tmp-<pid>`` still runs here.

    A long Annoy build writes nothing for minutes, so age alone could delete a live build. Past a day
    the directory goes regardless (the pid may have been reused, or belong to another machine).
    """
    pid_text = tmp_name.rsplit(TMP_MARKER, 1)[-1]
    if not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return time.time() - _version_time(tmp_name) < _DAY


def _version_time(tmp_name: str) -> float:
    try:
        return calendar.timegm(time.strptime(tmp_name[:15], "%Y%m%dT%H%M%S"))
    except ValueError:
        return 0.0


def _remove_stale_links(root: Path, max_age: float) -> None:
    """Temporary symlinks left when a publish was killed between symlink() and replace()."""
    cutoff = time.time() - max_age
    for link in root.glob(f".{CURRENT_LINK}{TMP_MARKER}*"):
        if link.lstat().st_mtime < cutoff:
            link.unlink(missing_ok=True)
