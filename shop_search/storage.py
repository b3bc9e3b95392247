"""Where files live: every photo, thumbnail, kept query photo, import upload and shipped index build is
read and written through Django's storage API (``STORAGES``), so a deployment can move them all to
object storage (django-storages' S3 backend, docs/deployment.md) by configuration alone.

Aliases in ``STORAGES``: ``default`` (media: product and flagged photos, thumbnails, kept query
photos), ``imports`` (the admin's uploaded import files: private, never given a URL) and, when
``SEARCH_INDEX_STORAGE`` names one, the storage that index builds are shipped through
(search.services.index_shipping).
"""

from __future__ import annotations

import os
import tempfile

from django.core.files.storage import FileSystemStorage, Storage, storages
from django.core.files.utils import validate_file_name
from django.utils._os import safe_makedirs
from django.utils.functional import LazyObject


def _storage_errors() -> tuple[type[BaseException], ...]:
    # What a storage backend raises when it cannot read or write: OSError for files on disk; botocore's
    # own classes (not OSErrors) for django-storages' S3 backend — an endpoint that is down, a missing
    # bucket, denied credentials. botocore is only there when the S3 backend is installed.
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        return (OSError,)
    return (OSError, BotoCoreError, ClientError)


# Catch these (not Exception) around storage calls that have a fallback.
STORAGE_ERRORS = _storage_errors()


class AtomicFileSystemStorage(FileSystemStorage):
    """FileSystemStorage whose files appear whole or not at all.

    Django's own writes into the final name chunk by chunk, so a concurrent reader (a thumbnail
    requested twice at once, a worker embedding a photo being stored) can see half a file. Here the
    bytes go to a hidden temporary file in the target folder first and are then hard-linked into
    place: ``os.link`` fails when the name exists, so nothing is overwritten and a name taken meanwhile
    gets Django's next available name, as before (with ``allow_overwrite`` the file replaces the old one
    in one rename). Hidden names are never served
    (shop_search.media).
    """

    def _save(self, name: str, content) -> str:
        validate_file_name(name, allow_relative_path=True)
        full_path = self.path(name)
        directory = os.path.dirname(full_path)
        if self.directory_permissions_mode is not None:
            safe_makedirs(directory, self.directory_permissions_mode, exist_ok=True)
        else:
            os.makedirs(directory, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".", suffix=".part")
        try:
            with os.fdopen(descriptor, "wb") as out:
                for chunk in content.chunks():
                    out.write(chunk if isinstance(chunk, bytes) else chunk.encode())
            # mkstemp makes the file private; the web server (another user) must be able to read it.
            os.chmod(temporary, self.file_permissions_mode or 0o644)
            while not self._allow_overwrite:
                try:
                    os.link(temporary, full_path)
                    break
                except FileExistsError:
                    name = self.get_available_name(name)
                    full_path = self.path(name)
            else:
                os.replace(temporary, full_path)  # OPTIONS allow_overwrite: replaced whole, in one step
        finally:
            if os.path.lexists(temporary):
                os.unlink(temporary)
        return os.path.relpath(full_path, self.location).replace("\\", "/")


class StorageAlias(LazyObject):
    """The storage configured under ``STORAGES[alias]``, looked up at every use.

    For a model FileField's ``storage``: Django evaluates it once, when the model class is created,
    but a deployment (or a test) decides the backend in settings, which may change afterwards.
    """

    def __init__(self, alias: str) -> None:
        super().__init__()
        self.__dict__["_alias"] = alias

    @property
    def _wrapped(self) -> Storage:  # a property wins over the instance attribute LazyObject caches
        return storages[self.__dict__["_alias"]]

    def _setup(self) -> None:  # never needed: _wrapped is never empty
        pass

    def __reduce__(self):
        return (StorageAlias, (self.__dict__["_alias"],))
