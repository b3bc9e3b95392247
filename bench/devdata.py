"""The real photo sets the benchmarks use (see ../shared/data/DATA.md), fetched when missing."""

from __future__ import annotations

import gzip
import os
import subprocess
from pathlib import Path

import numpy as np

BASE_DIR = Path(__file__).resolve().parent.parent
FETCH_SCRIPT = BASE_DIR.parent / "shared" / "data" / "fetch-dev-data.sh"
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
# Drawings, calibration targets, logos, text and synthetic test patterns: not photos of things.
NOT_PHOTOS = {
    "opencv": {
        "chessboard", "gradient", "LinuxLogo", "WindowsLogo", "opencv-logo", "opencv-logo-white", "digits",
        "sudoku", "imageTextN", "imageTextR", "text_defocus", "text_motion", "mask", "ml", "notes",
        "detect_blob", "ellipses", "pic1", "pic2", "pic3", "pic4", "pic5", "pic6", "templ", "tmpl",
        "cards", "starry_night", "aloeGT", "licenseplate_motion", "Blender_Suzanne1", "Blender_Suzanne2",
    },
    "mvtb": {
        "5points", "Image18", "adelson", "apriltag12", "arucoboard", "eg-morph1", "eg-morph2",
        "fisheye_target", "multiblobs", "multiblobs_edgecase", "scale-space", "segmentation", "tags",
        "yellowtargets", "58060", "monalisa", "greenscreen", "wally", "castle", "castle2",
    },
}  # fmt: skip
# Left/right stereo frames would make near-identical "originals"; keep one of each series.
SERIES = ("left", "right")


def data_dir(explicit: str | None = None) -> Path:
    """--data, else $SHOP_SEARCH_DEVDATA, else var/devdata (fetched by DATA.md's script when missing)."""
    chosen = explicit or os.environ.get("SHOP_SEARCH_DEVDATA") or str(BASE_DIR / "var" / "devdata")
    root = Path(chosen)
    if not (root / "gcompris").is_dir():
        print(f"fetching the photo sets into {root} with {FETCH_SCRIPT} ...", flush=True)
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(["sh", str(FETCH_SCRIPT), str(root)], check=True)
    return root


def product_photos(root: Path) -> list[Path]:
    """Real photos of things from gcompris/, opencv/ and mvtb/ (top level), in a stable order."""
    photos = sorted(p for p in (root / "gcompris").rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)
    for folder in ("opencv", "mvtb"):
        for path in sorted((root / folder).iterdir()):
            if path.suffix.lower() not in PHOTO_SUFFIXES or path.stem in NOT_PHOTOS[folder]:
                continue
            if path.stem.rstrip("0123456789") in SERIES and path.stem not in ("left01", "right01"):
                continue
            photos.append(path)
    return photos


def read_idx(path: Path) -> np.ndarray:
    """An IDX array (Fashion-MNIST's format): magic, dimension sizes, then uint8 data."""
    with gzip.open(path) as fh:
        data = fh.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def fashion_mnist_test(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """(10000, 28, 28) uint8 images and (10000,) labels of the Fashion-MNIST test set."""
    folder = root / "fashion-mnist"
    return read_idx(folder / "t10k-images-idx3-ubyte.gz"), read_idx(folder / "t10k-labels-idx1-ubyte.gz")
