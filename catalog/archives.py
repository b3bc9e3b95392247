"""Safe extraction of an uploaded ZIP of product photos (admin bulk import).

A ZIP comes from a browser, so nothing in it is trusted: member names may point outside the target
folder (absolute paths, "..", drive letters), members may be symlinks, and the sizes in the central
directory may lie. The limits are checked twice: from the central directory before anything is
written (fast refusal), and again while streaming every member (what is actually written counts).
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from django.conf import settings

# Photos barely compress (JPEG, PNG, WebP are compressed already); a member that inflates more than
# this is a zip bomb or not a photo. Text such as a CSV compresses ~10x, far below.
MAX_COMPRESSION_RATIO = 100
# Ratios of tiny members mean nothing (a 2 KB file of zeros); only check members above this size.
RATIO_MIN_BYTES = 1024 * 1024
_CHUNK = 64 * 1024
# Folders that archivers add and that hold no photos of the catalog.
_JUNK_DIRS = {"__MACOSX"}


class UnsafeArchive(ValueError):
    """The ZIP is refused as a whole; the message says why, in words for the merchandiser."""


@dataclass
class ArchiveLimits:
    max_files: int
    max_bytes: int
    max_ratio: float = MAX_COMPRESSION_RATIO

    @classmethod
    def from_settings(cls) -> ArchiveLimits:
        return cls(
            max_files=settings.CATALOG_IMPORT_MAX_FILES,
            max_bytes=settings.CATALOG_IMPORT_MAX_UNPACKED_BYTES,
        )


@dataclass
class ExtractedArchive:
    target: Path  # where the ZIP's root was extracted: paths named in a CSV are relative to it
    root: Path  # the folder tree for a folder-layout import (see _content_root)
    files: list[Path] = field(default_factory=list)
    bytes_written: int = 0


def archive_check(source: Path | IO[bytes], *, limits: ArchiveLimits | None = None) -> list[zipfile.ZipInfo]:
    """The members to extract, after checking names, types and declared sizes; raises UnsafeArchive."""
    limits = limits or ArchiveLimits.from_settings()
    with _open_zip(source) as archive:
        members = [info for info in archive.infolist() if not _is_junk(info)]
    files = [info for info in members if not info.is_dir()]
    for info in members:
        _check_member(info, limits)
    if len(files) > limits.max_files:
        raise UnsafeArchive(f"The ZIP holds {len(files)} files; the limit is {limits.max_files}.")
    declared = sum(info.file_size for info in files)
    if declared > limits.max_bytes:
        raise UnsafeArchive(_size_message(declared, limits.max_bytes))
    return files


def archive_extract(
    source: Path | IO[bytes], target: Path, *, limits: ArchiveLimits | None = None
) -> ExtractedArchive:
    """Extract the ZIP's files under ``target`` (created, must not exist yet); raises UnsafeArchive.

    On refusal the partly extracted folder is removed, so the caller never sees half an archive.
    """
    limits = limits or ArchiveLimits.from_settings()
    members = archive_check(source, limits=limits)
    target = Path(target)
    target.mkdir(parents=True, exist_ok=False)
    result = ExtractedArchive(target=target, root=target)
    try:
        with _open_zip(source) as archive:
            for info in members:
                result.files.append(_extract_member(archive, info, target, limits, result))
    except (zipfile.BadZipFile, EOFError, NotImplementedError) as exc:
        # zipfile never inflates past a member's declared size; a lie shows up as a CRC or length error.
        shutil.rmtree(target, ignore_errors=True)
        raise UnsafeArchive(f"The ZIP is damaged or its sizes do not match its content ({exc}).") from exc
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    result.root = _content_root(target)
    return result


def _open_zip(source: Path | IO[bytes]) -> zipfile.ZipFile:
    if hasattr(source, "seek"):
        source.seek(0)
    try:
        return zipfile.ZipFile(source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise UnsafeArchive("The file is not a readable ZIP archive.") from exc


def _is_junk(info: zipfile.ZipInfo) -> bool:
    return info.filename.replace("\\", "/").split("/")[0] in _JUNK_DIRS


def _check_member(info: zipfile.ZipInfo, limits: ArchiveLimits) -> None:
    _safe_parts(info.filename)
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise UnsafeArchive(f"The ZIP contains a symbolic link ({info.filename!r}); links are not accepted.")
    if info.flag_bits & 0x1:
        raise UnsafeArchive(f"{info.filename!r} is encrypted; upload a ZIP without a password.")
    if not info.is_dir() and _too_compressed(info.file_size, info.compress_size, limits):
        raise UnsafeArchive(_ratio_message(info.filename, limits))


def _safe_parts(name: str) -> tuple[str, ...]:
    """The member's path parts, refusing anything that could land outside the target folder."""
    normalised = name.replace("\\", "/")
    parts = PurePosixPath(normalised).parts
    absolute = normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":")
    if absolute or ".." in parts or not parts or "\x00" in normalised:
        raise UnsafeArchive(f"The ZIP contains an unsafe path {name!r} (outside the import folder).")
    return parts


def _too_compressed(size: int, compressed: int, limits: ArchiveLimits) -> bool:
    return size > RATIO_MIN_BYTES and size > limits.max_ratio * max(compressed, 1)


def _extract_member(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    target: Path,
    limits: ArchiveLimits,
    result: ExtractedArchive,
) -> Path:
    path = target.joinpath(*_safe_parts(info.filename))
    if not path.resolve().is_relative_to(target.resolve()):  # belt and braces after _safe_parts
        raise UnsafeArchive(f"The ZIP contains an unsafe path {info.filename!r} (outside the import folder).")
    if info.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with archive.open(info) as member, path.open("xb") as out:
        while chunk := member.read(_CHUNK):
            written += len(chunk)
            result.bytes_written += len(chunk)
            _check_streamed(info, written, result.bytes_written, limits)
            out.write(chunk)
    return path


def _check_streamed(info: zipfile.ZipInfo, written: int, total: int, limits: ArchiveLimits) -> None:
    """Limits on the bytes really inflated so far: a forged central directory does not get past these."""
    if total > limits.max_bytes:
        raise UnsafeArchive(_size_message(total, limits.max_bytes))
    if _too_compressed(written, info.compress_size, limits):
        raise UnsafeArchive(_ratio_message(info.filename, limits))


def _content_root(target: Path) -> Path:
    """The folder tree to import: the ZIP's root, or the single folder that wraps the category folders
    (as "Compress catalog/" makes). A lone folder of photos is kept: it is itself a category."""
    entries = [entry for entry in target.iterdir() if entry.name not in _JUNK_DIRS]
    if len(entries) == 1 and entries[0].is_dir() and any(child.is_dir() for child in entries[0].iterdir()):
        return entries[0]
    return target


def _size_message(size: int, limit: int) -> str:
    return f"The ZIP unpacks to more than {limit / 1_048_576:.0f} MB (at least {size / 1_048_576:.1f} MB)."


def _ratio_message(name: str, limits: ArchiveLimits) -> str:
    return (
        f"{name!r} inflates more than {limits.max_ratio:.0f} times its packed size: "
        "the ZIP looks like a zip bomb and is refused."
    )
