"""The manifest: what a build contains, written last so its presence marks a complete build."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.json"
ANNOY_NAME = "items.annoy"
IDS_NAME = "ids.npy"
ID_ORDER_NAME = "id_order.npy"
VECTORS_NAME = "vectors.npy"
PCA_NAME = "pca.npz"
ATTRS_NAME = "attrs.npz"  # per-row product, category, price, active (builds before it have none)
# Format 1 throughout: ``checksums`` was added without a bump (readers ignore unknown keys, so older
# code still reads newer builds); a manifest without it is verified by sizes only.
FORMAT_VERSION = 1


class IndexCorrupt(ValueError):
    """A build directory is missing files or its manifest does not describe it."""


@dataclass(frozen=True)
class Manifest:
    version: str
    fingerprint: str
    count: int
    dim: int
    index_dim: int
    pca: bool
    n_trees: int
    metric: str
    built_at: str
    build_seconds: float
    params: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)  # name -> size in bytes
    checksums: dict[str, str] = field(default_factory=dict)  # name -> "sha256:<hex>" (search.index.integrity)
    format: int = FORMAT_VERSION

    @property
    def size_bytes(self) -> int:
        return sum(self.files.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{key: value for key, value in data.items() if key in known})


def fsync_path(path: Path) -> None:
    """Flush a file or directory entry to disk (directories: so renames inside survive a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def manifest_write(build_dir: Path, manifest: Manifest) -> None:
    tmp = build_dir / f".{MANIFEST_NAME}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(manifest.to_dict(), fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, build_dir / MANIFEST_NAME)
    fsync_path(build_dir)


def manifest_read(build_dir: Path) -> Manifest:
    path = Path(build_dir) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        manifest = Manifest.from_dict(data)
    # Messages name the file, not its path: they reach status pages (the caller knows the build).
    except FileNotFoundError as exc:
        raise IndexCorrupt(f"{MANIFEST_NAME} is missing: not a complete index build") from exc
    except (ValueError, TypeError) as exc:
        raise IndexCorrupt(f"{MANIFEST_NAME} is not a valid index manifest: {exc}") from exc
    if manifest.format != FORMAT_VERSION:
        raise IndexCorrupt(f"{MANIFEST_NAME} has format {manifest.format}, this code reads {FORMAT_VERSION}")
    return manifest
