"""Is a build's content what its manifest promises? Checked once per process at load, sizes again per query.

- At build: the manifest records each file's size and checksum (``sha256``: about 1 GB/s on this
  machine's SHA instructions, faster than blake2b here and checkable by hand with ``sha256sum``).
- At load: every listed file is opened, its size taken from the open file (the very inode that is
  then mapped) and its content hashed. A manifest without checksums (older builds) is checked by size.
- Per query: the sizes of the memory-mapped files, one ``fstat`` each. A file truncated under a live
  map turns the next read of a lost page into SIGBUS, which kills the process; checking first turns
  it into ``IndexCorrupt`` instead.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO

from .manifest import IndexCorrupt, Manifest

CHECKSUM_ALGORITHM = "sha256"


def file_checksum(fh: BinaryIO, algorithm: str = CHECKSUM_ALGORITHM) -> str:
    """``"<algorithm>:<hex digest>"`` of the whole file (read from its start)."""
    fh.seek(0)
    return f"{algorithm}:{hashlib.file_digest(fh, algorithm).hexdigest()}"


def build_file_facts(build_dir: Path, names: list[str]) -> tuple[dict[str, int], dict[str, str]]:
    """Sizes and checksums of these files of a build, as the manifest records them."""
    sizes: dict[str, int] = {}
    checksums: dict[str, str] = {}
    for name in names:
        with open(Path(build_dir) / name, "rb") as fh:
            sizes[name] = os.fstat(fh.fileno()).st_size
            checksums[name] = file_checksum(fh)
    return sizes, checksums


def files_open_verified(
    build_dir: Path, manifest: Manifest, *, checksums: bool = True
) -> dict[str, BinaryIO]:
    """Every file the manifest lists, opened, with the size (and checksum) it promised.

    Raises IndexCorrupt naming the first file that differs, after closing what it opened; other
    OSErrors (permissions, too many open files) pass through: they say nothing about the content.
    The caller closes the files it is given.
    """
    opened: dict[str, BinaryIO] = {}
    try:
        for name, expected in manifest.files.items():
            try:
                opened[name] = open(Path(build_dir) / name, "rb")  # noqa: SIM115 - kept open by the caller
            except FileNotFoundError:
                raise IndexCorrupt(f"{name} is missing") from None
            size = os.fstat(opened[name].fileno()).st_size
            if size != expected:
                raise IndexCorrupt(f"{name} is {size} bytes, expected {expected}")
        # Sizes of every file first: they catch truncation without reading gigabytes.
        if checksums and manifest.checksums:
            for name, fh in opened.items():
                _check_content(name, fh, manifest.checksums.get(name, ""))
    except BaseException:
        for fh in opened.values():
            fh.close()
        raise
    return opened


def _check_content(name: str, fh: BinaryIO, recorded: str) -> None:
    algorithm, _, digest = recorded.partition(":")
    if not digest or algorithm not in hashlib.algorithms_guaranteed:
        raise IndexCorrupt(f"the manifest records no usable checksum for {name} ({recorded!r})")
    if file_checksum(fh, algorithm) != recorded:
        raise IndexCorrupt(f"{name} does not match its {algorithm} checksum")


def same_file(fh: BinaryIO, path: Path) -> bool:
    """Whether ``path`` still names the file ``fh`` has open (it was mapped by path after being verified)."""
    mine, theirs = os.fstat(fh.fileno()), os.stat(path)
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


class MappedFiles:
    """The files a reader memory-maps, held open so their size can be checked before each use."""

    def __init__(self, files: dict[str, BinaryIO], sizes: dict[str, int]) -> None:
        self._files = files
        self._sizes = {name: sizes[name] for name in files}

    def damage(self) -> str:
        """Why reading the maps is no longer safe ("" while every size is the verified one)."""
        for name, fh in self._files.items():
            size = os.fstat(fh.fileno()).st_size
            if size != self._sizes[name]:
                return f"{name} is now {size} bytes, expected {self._sizes[name]}"
        return ""
