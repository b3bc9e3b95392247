"""Shipping index builds between machines through a Django storage (object storage in production).

With a file-based index on several machines and no shared SEARCH_INDEX_DIR, SEARCH_INDEX_STORAGE names
the STORAGES alias builds travel through. Layout there::

    builds/<version>/<file>         every file the build's manifest lists, then manifest.json last
    current.json                    {"version": "<version>"}: the published build, written after it

The worker that publishes a build uploads it first (``index_build_ship``), so the pointer never names
an incomplete build. Every process follows the pointer (``index_follow_storage``, at most every
SEARCH_INDEX_SYNC_SECONDS, in the background; at start-up before serving): when its local copy of the
published build is missing or stale it downloads the build into a temporary folder of its local
SEARCH_INDEX_DIR, verifies every file's size and sha256 against the manifest, and only then moves it
into place and publishes it locally (search.index.index_publish). Readers then swap to it as to any
build. A download that fails verification is thrown away; the last good local build keeps serving.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages

from search.index import IndexCorrupt, Manifest, current_version, index_publish, manifest_read
from search.index.integrity import files_open_verified
from search.index.manifest import MANIFEST_NAME
from search.index.publish import TMP_MARKER, build_dir_remove, build_files_seal, build_path, builds_dir

logger = logging.getLogger(__name__)

POINTER_NAME = "current.json"
_CHUNK = 1024 * 1024


def index_storage() -> Storage | None:
    """The storage builds are shipped through, or None when SEARCH_INDEX_DIR is all there is."""
    alias = settings.SEARCH_INDEX_STORAGE
    return storages[alias] if alias else None


# --- the publishing worker ----------------------------------------------------------------------


def index_build_ship(storage: Storage, root: Path, version: str) -> None:
    """Upload the complete local build ``version`` (manifest last), then point current.json at it."""
    build_dir = build_path(root, version)
    manifest = manifest_read(build_dir)
    for name in [*manifest.files, MANIFEST_NAME]:
        with open(build_dir / name, "rb") as handle:
            _put(storage, f"builds/{version}/{name}", File(handle))
    _put(storage, POINTER_NAME, ContentFile(json.dumps({"version": version}).encode()))


def index_storage_cleanup(storage: Storage, keep: int) -> list[str]:
    """Delete shipped builds but the ``keep`` newest and the published one; returns their versions."""
    published = published_version(storage)
    try:
        versions = sorted(storage.listdir("builds")[0])
    except FileNotFoundError:
        return []
    kept = set(versions[-keep:]) if keep > 0 else set()
    removed = [v for v in versions if v not in kept and v != published]
    for version in removed:
        folder = f"builds/{version}"
        for name in storage.listdir(folder)[1]:
            storage.delete(f"{folder}/{name}")
        storage.delete(folder)  # the emptied folder, where the storage has folders
    return removed


def _put(storage: Storage, name: str, content: File) -> None:
    # Storages that never overwrite would store a second copy under another name: replace instead.
    if storage.get_available_name(name) != name:
        storage.delete(name)
    saved = storage.save(name, content)
    if saved != name:
        storage.delete(saved)
        raise OSError(f"{name} was written concurrently by another process")


# --- every process that searches --------------------------------------------------------------


def published_version(storage: Storage) -> str | None:
    """The version current.json names, or None when nothing was shipped yet."""
    try:
        with storage.open(POINTER_NAME, "rb") as handle:
            version = json.loads(handle.read())["version"]
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise IndexCorrupt(f"{POINTER_NAME} in the index storage is not a build pointer: {exc}") from exc
    _check_plain_name(version, "version")
    return version


def index_published_fetch(storage: Storage, root: Path) -> str | None:
    """Make the build published in ``storage`` the local published build under ``root``, downloading
    and verifying it first when the local copy is missing, incomplete or damaged. Returns the local
    published version (unchanged when nothing was shipped yet).

    Raises IndexCorrupt when the shipped build does not match its manifest, OSError when the storage
    or the disk fails; the local published build is untouched then.
    """
    version = published_version(storage)
    if version is None:
        return current_version(root)
    if not _intact(build_path(root, version)):
        _download(storage, Path(root), version)
    if current_version(root) != version:
        index_publish(root, version)
        logger.info("Index build %s fetched from the index storage and published here", version)
    return version


def _intact(build_dir: Path) -> bool:
    """A complete local build whose files have the sizes its manifest records (checksums are checked
    when the build was downloaded, and again by each reader that opens it)."""
    try:
        manifest = manifest_read(build_dir)
        for handle in files_open_verified(build_dir, manifest, checksums=False).values():
            handle.close()
    except (IndexCorrupt, OSError):
        return False
    return True


def _download(storage: Storage, root: Path, version: str) -> None:
    folder = f"builds/{version}"
    with storage.open(f"{folder}/{MANIFEST_NAME}", "rb") as handle:
        manifest_bytes = handle.read()
    try:
        manifest = Manifest.from_dict(json.loads(manifest_bytes))
    except (ValueError, TypeError) as exc:
        raise IndexCorrupt(f"the shipped {MANIFEST_NAME} of {version} is not valid: {exc}") from exc
    missing = [name for name in manifest.files if name not in manifest.checksums]
    if manifest.version != version or missing:
        raise IndexCorrupt(f"the shipped manifest of {version} does not describe it (no checksum: {missing})")
    tmp_dir = builds_dir(root) / f"{version}{TMP_MARKER}{os.getpid()}-{threading.get_ident()}"
    tmp_dir.mkdir(parents=True)
    try:
        for name in manifest.files:
            _check_plain_name(name, "file name")
            with storage.open(f"{folder}/{name}", "rb") as source, open(tmp_dir / name, "xb") as target:
                shutil.copyfileobj(source, target, _CHUNK)
        for handle in files_open_verified(tmp_dir, manifest, checksums=True).values():
            handle.close()
        (tmp_dir / MANIFEST_NAME).write_bytes(manifest_bytes)  # last: it marks a complete build
        build_files_seal(tmp_dir)
        _move_into_place(tmp_dir, build_path(root, version))
    finally:
        build_dir_remove(tmp_dir)  # gone already when it was moved into place


def _move_into_place(tmp_dir: Path, final_dir: Path) -> None:
    if final_dir.exists() and not _intact(final_dir):
        build_dir_remove(final_dir)  # an incomplete or damaged copy: replaced by the verified one
    try:
        os.rename(tmp_dir, final_dir)
    except OSError:
        if not _intact(final_dir):  # another process here moved its own verified copy in first
            raise


def _check_plain_name(name: object, what: str) -> None:
    # Names from the storage become local paths: nothing may climb out of the index folder.
    if not isinstance(name, str) or not name or Path(name).name != name or name.startswith("."):
        raise IndexCorrupt(f"the index storage names an unusable {what}: {name!r}")
    if TMP_MARKER in name:
        raise IndexCorrupt(f"the index storage names an unusable {what}: {name!r}")


# --- following the storage: throttled, in the background --------------------------------------

_follow_lock = threading.Lock()
_next_check = 0.0


def index_follow_storage(*, wait: bool = False) -> None:
    """Fetch a newly published build when one is due to be looked for (never more often than every
    SEARCH_INDEX_SYNC_SECONDS). Queries call it with ``wait=False``: the fetch runs in a background
    thread and they go on with the local build meanwhile. Start-up calls it with ``wait=True``."""
    global _next_check
    storage = index_storage()
    if storage is None or (not wait and time.monotonic() < _next_check):
        return
    if not _follow_lock.acquire(blocking=wait):
        return  # a fetch is already running
    _next_check = time.monotonic() + settings.SEARCH_INDEX_SYNC_SECONDS
    if wait:
        _fetch_and_release(storage, Path(settings.SEARCH_INDEX_DIR))
    else:
        root = Path(settings.SEARCH_INDEX_DIR)
        threading.Thread(
            target=_fetch_and_release, args=(storage, root), name="index-fetch", daemon=True
        ).start()


def _fetch_and_release(storage: Storage, root: Path) -> None:
    try:
        index_published_fetch(storage, root)
    except (IndexCorrupt, OSError, ValueError):
        logger.exception("Could not fetch the published index build from the index storage")
    except Exception:  # noqa: BLE001 - a storage backend's own errors (e.g. botocore's): logged, retried
        logger.exception("Could not reach the index storage")
    finally:
        _follow_lock.release()


def forget_follow_schedule() -> None:
    """Tests: look at the storage on the next call."""
    global _next_check
    _next_check = 0.0
