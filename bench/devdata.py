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


def fashion_mnist_train(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """(60000, 28, 28) uint8 images and (60000,) labels of the Fashion-MNIST training set."""
    folder = root / "fashion-mnist"
    return read_idx(folder / "train-images-idx3-ubyte.gz"), read_idx(folder / "train-labels-idx1-ubyte.gz")


# --- product-in-a-scene backgrounds: real photos that are NOT in the catalog ---------------------

# Scenes from the dev sets (desks, rooms, streets, campus): left out of the scene benchmark's catalog.
DEV_SCENES = (
    "opencv/stuff.jpg", "opencv/home.jpg", "opencv/left.jpg", "opencv/building.jpg",
    "mvtb/lab-scene.png", "mvtb/street.png", "mvtb/road.png", "mvtb/parks.png", "mvtb/image3.jpg",
    "mvtb/roof.png", "mvtb/notre-dame.png",
)  # fmt: skip
# Photographs (not drawings) among Debian's desktop wallpapers, all GPL-2+ (debian/copyright of each).
WALLPAPER_PACKAGES = ("mate-backgrounds", "lomiri-wallpapers-20.04")
WALLPAPERS = (
    "usr/share/backgrounds/mate/nature/Aqua.jpg", "usr/share/backgrounds/mate/nature/Blinds.jpg",
    "usr/share/backgrounds/mate/nature/Dune.jpg", "usr/share/backgrounds/mate/nature/FreshFlower.jpg",
    "usr/share/backgrounds/mate/nature/Garden.jpg", "usr/share/backgrounds/mate/nature/GreenMeadow.jpg",
    "usr/share/backgrounds/mate/nature/LadyBird.jpg", "usr/share/backgrounds/mate/nature/RainDrops.jpg",
    "usr/share/backgrounds/mate/nature/Storm.jpg", "usr/share/backgrounds/mate/nature/TwoWings.jpg",
    "usr/share/backgrounds/mate/nature/Wood.jpg", "usr/share/backgrounds/mate/nature/YellowFlower.jpg",
    "usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg", "usr/share/backgrounds/Infinite-Sea_by_Aury88.jpg",
)  # fmt: skip


def wallpapers(root: Path) -> list[Path]:
    """The photographs among Debian's wallpapers, fetched into root/wallpapers with `apt-get download`
    and `dpkg-deb -x` (no root, nothing installed) when missing."""
    folder = root / "wallpapers"
    wanted = [folder / Path(name).name for name in WALLPAPERS]
    if all(path.is_file() for path in wanted):
        return wanted
    debs, extracted = root / "deb-wallpapers", root / "x-wallpapers"
    debs.mkdir(parents=True, exist_ok=True)
    print(f"fetching {', '.join(WALLPAPER_PACKAGES)} into {debs} ...", flush=True)
    subprocess.run(["apt-get", "download", *WALLPAPER_PACKAGES], cwd=debs, check=True)
    folder.mkdir(exist_ok=True)
    for deb in debs.glob("*.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(extracted)], check=True)
    for name, target in zip(WALLPAPERS, wanted, strict=True):
        target.write_bytes((extracted / name).read_bytes())
    return wanted


def scene_backgrounds(root: Path) -> list[Path]:
    """Real background photos for pasted products: the mvtb campus gallery (with its holdout), the
    dev sets' indoor and street scenes, and Debian's photographic wallpapers; in a stable order."""
    campus = sorted((root / "mvtb" / "campus").rglob("*.png"))
    return campus + [root / name for name in DEV_SCENES] + wallpapers(root)


def scene_products(root: Path) -> list[Path]:
    """The things pasted into scenes: GCompris's tools and household objects."""
    return sorted(p for sub in ("tools", "others") for p in (root / "gcompris" / sub).glob("*.webp"))
