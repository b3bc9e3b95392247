"""Rebuild the demo catalog (images/, products.csv, ATTRIBUTION.md) from the real photo sets.

Run once by a maintainer, not at install time: the output is committed. Sources are described in
../shared/data/DATA.md; fetch them with `sh ../shared/data/fetch-dev-data.sh DIR`.

    .venv/bin/python catalog/demo/build_demo.py /work/devdata

Only files whose licence allows redistribution are kept (public domain, CC0, CC-BY, CC-BY-SA for the
GCompris photos; Apache-2.0/BSD for OpenCV's; MIT for mvtb and Fashion-MNIST).
"""

import csv
import gzip
import random
import re
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
IMAGES = HERE / "images"
MAX_SIDE = 800
REDISTRIBUTABLE = re.compile(r"^(public domain|cc0|cc-by(-sa)?)", re.IGNORECASE)


@dataclass
class Item:
    sku: str
    name: str
    category: str
    price: Decimal
    description: str
    image: str
    author: str
    source: str
    licence: str


# GCompris file stem -> (name, category, price range in EUR, description).
GCOMPRIS = {
    "hammer": ("Claw hammer, 16 oz", "Tools > Hammers", (9, 39), "Steel head, shock-absorbing handle."),
    "measuringTape": ("Tape measure", "Tools > Measuring", (5, 25), "Retractable steel tape, lockable."),
    "multimeter": ("Digital multimeter", "Tools > Electrical", (19, 89), "Voltage, current, resistance."),
    "plier": ("Combination pliers", "Tools > Pliers", (7, 29), "Hardened jaws, insulated grips."),
    "sideCutter": ("Diagonal side cutters", "Tools > Pliers", (8, 24), "Carbon steel, flush cut."),
    "scissors": ("Scissors", "Tools > Cutting", (4, 22), "Stainless steel blades."),
    "cuttingTool": ("Cutting tool", "Tools > Cutting", (6, 18), "For wire and thin sheet."),
    "nailCutter": ("Nail clipper", "Home > Bathroom", (2, 9), "Stainless steel with file."),
    "screwDriver": ("Screwdriver", "Tools > Screwdrivers", (3, 19), "Magnetic tip, comfort grip."),
    "sickle": ("Garden sickle", "Garden", (9, 29), "Curved blade for grass and weeds."),
    "spray": ("Spray bottle, 500 ml", "Garden", (2, 8), "Adjustable nozzle."),
    "tweezer": ("Precision tweezers", "Tools > Electrical", (3, 15), "Anti-magnetic stainless steel."),
    "wrench": ("Adjustable wrench, 10 in", "Tools > Wrenches", (8, 34), "Chrome vanadium, wide jaw."),
    "baseball": ("Baseball", "Sports", (4, 12), "Leather cover, cork core."),
    "volleyball": ("Beach volleyball", "Sports", (12, 35), "Soft-touch, size 5."),
    "blackslate": ("Chalkboard", "Home > Office", (15, 45), "Wall-mounted, wooden frame."),
    "bucket": ("Wooden pail", "Home", (18, 49), "Pine staves, ash handle."),
    "buffetset": ("Cup and saucer", "Kitchen > Tableware", (9, 39), "Painted porcelain."),
    "bulb": ("LED bulb, E27", "Home > Lighting", (3, 12), "Warm white, 806 lm."),
    "chair": ("Wooden chair", "Home > Furniture", (39, 149), "Solid wood, classic style."),
    "cup": ("Ceramic cup", "Kitchen > Tableware", (4, 15), "Glazed earthenware."),
    "erasers": ("Erasers, pack of 10", "Home > Office", (1, 5), "Latex-free."),
    "knife": ("Table knife", "Kitchen > Cutlery", (5, 19), "Stainless steel."),
    "pan": ("Cast-iron frying pan, 26 cm", "Kitchen > Cookware", (19, 59), "Pre-seasoned cast iron."),
    "pencil": ("Graphite pencil", "Home > Office", (1, 3), "HB, with eraser."),
    "pillow": ("Pillow", "Home > Bedroom", (12, 39), "Soft fill, cotton cover."),
    "plate": ("Decorated plate", "Kitchen > Tableware", (9, 49), "Hand-painted."),
    "spoons": ("Spoons, set of 6", "Kitchen > Cutlery", (6, 24), "Stainless steel."),
    "weighingMachine": ("Kitchen scale", "Kitchen", (12, 39), "Digital, 5 kg."),
}
# Photos whose product is not the folder's generic one.
NAMES = {
    "hammer3": "Sledgehammer, 3 kg",
    "hammer4": "Workshop hammer set",
    "hammer6": "Dead-blow hammer",
    "hammer7": "Armourer's hammer, antique",
    "hammer8": "Vintage hammer",
    "hammer9": "Vintage hammer, ash handle",
    "screwDriver3": "Torque screwdriver",
    "tweezer1": "Tweezers, set of 4",
    "wrench1": "Angle wrenches, pair",
    "multimeter2": "Analogue multimeter",
}
# Not products a shop sells: fishes/, monuments/, renewable/, igloo.
SKIP = {"igloo"}

OPENCV = {
    "apple.jpg": ("Red apple, 1 kg", "Fruit", Decimal("3.49"), "Crisp eating apples."),
    "orange.jpg": ("Oranges, 1 kg", "Fruit", Decimal("2.99"), "Juicy navel oranges."),
    "fruits.jpg": ("Fruit basket", "Fruit", Decimal("14.90"), "Oranges, lemons, limes and kiwis."),
    "box.png": ("Almond biscuits, 250 g", "Grocery", Decimal("4.50"), "Crisp almond cookies."),
    "smarties.png": ("Chocolate beans, 150 g", "Grocery", Decimal("2.20"), "Colourful sugar-coated."),
}
MVTB = {
    f"flowers{i}.png": ("Tulip bulbs, mixed", "Garden > Plants", None, "Flowering spring bulbs.")
    for i in range(1, 10)
}
MVTB.update(
    {
        f"tomato_{n}.png": ("Tomato plant", "Garden > Plants", None, "Cherry tomato seedling in a pot.")
        for n in (14, 35, 54, 124)
    }
)

FASHION_CLASSES = [
    ("T-shirt", "Fashion > Tops", (8, 25)),
    ("Trousers", "Fashion > Trousers", (25, 70)),
    ("Pullover", "Fashion > Tops", (25, 60)),
    ("Dress", "Fashion > Dresses", (30, 90)),
    ("Coat", "Fashion > Coats", (60, 180)),
    ("Sandals", "Fashion > Shoes", (20, 60)),
    ("Shirt", "Fashion > Tops", (20, 50)),
    ("Sneakers", "Fashion > Shoes", (40, 120)),
    ("Bag", "Fashion > Bags", (20, 150)),
    ("Ankle boots", "Fashion > Shoes", (50, 140)),
]
FASHION_PER_CLASS = 10


def price_in(rng: random.Random, low: int, high: int) -> Decimal:
    # Shop-like prices ending in .99 or .49 so price filters have something to bite on.
    return Decimal(rng.randint(low, high)) - Decimal(rng.choice(["0.01", "0.51", "0.00"]))


def save_photo(src: Path, name: str) -> str:
    image = Image.open(src)
    image = image.convert("RGB") if image.mode not in ("RGB", "L") else image
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    if src.suffix == ".webp":
        out = f"{name}.webp"
        image.save(IMAGES / out, quality=85)  # keep WebP: smaller than JPEG at the same quality
    else:
        out = f"{name}.jpg"
        image.save(IMAGES / out, quality=85)
    return out


def gcompris_licences(folder: Path) -> dict[str, tuple[str, str, str]]:
    """file name -> (author, source, licence) from the folder's README (debian copyright style)."""
    result = {}
    for block in folder.joinpath("README").read_text().split("\n\n"):
        fields = dict(re.findall(r"^(Copyright|Source|License): (.*)$", block, re.M))
        files = block.split("Files:", 1)[-1].split()
        for name in files:
            name = name.replace("screDriver", "screwDriver")  # typo in the upstream README
            result[name] = (fields["Copyright"], fields["Source"], fields["License"])
    return result


def gcompris_items(root: Path, rng: random.Random) -> list[Item]:
    items = []
    for folder in ("tools", "others"):
        licences = gcompris_licences(root / "gcompris" / folder)
        for src in sorted((root / "gcompris" / folder).glob("*.webp")):
            stem = re.sub(r"\d+$", "", src.stem)
            author, source, licence = licences[src.name]
            if stem in SKIP or not REDISTRIBUTABLE.match(licence):
                continue
            name, category, (low, high), description = GCOMPRIS[stem]
            number = src.stem[len(stem) :] or "0"
            name = NAMES.get(src.stem) or (f"{name}, model {number}" if number != "0" else name)
            sku = f"{folder[:4].upper()}-{stem[:8].upper()}-{number}"
            image = save_photo(src, f"{folder}-{src.stem}")
            price = price_in(rng, low, high)
            items.append(Item(sku, name, category, price, description, image, author, source, licence))
    return items


def other_photo_items(root: Path, rng: random.Random) -> list[Item]:
    items = []
    opencv_source = "OpenCV samples/data (Debian opencv-doc 4.6.0)"
    for i, (file, (name, category, price, description)) in enumerate(OPENCV.items(), 1):
        image = save_photo(root / "opencv" / file, f"opencv-{Path(file).stem}")
        sku = f"OCV-{Path(file).stem.upper()}-{i}"
        items.append(
            Item(
                sku,
                name,
                category,
                price,
                description,
                image,
                "OpenCV contributors",
                opencv_source,
                "Apache-2.0 / BSD-3-Clause",
            )
        )
    mvtb_source = "Machine Vision Toolbox data (PyPI mvtb-data 1.6.1)"
    for file, (name, category, _, description) in MVTB.items():
        image = save_photo(root / "mvtb" / file, f"mvtb-{Path(file).stem}")
        sku = f"MVTB-{Path(file).stem.upper()}"
        price = price_in(rng, 4, 15)
        items.append(Item(sku, name, category, price, description, image, "Peter Corke", mvtb_source, "MIT"))
    return items


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path) as fh:
        data = fh.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def fashion_items(root: Path, rng: random.Random) -> list[Item]:
    images = read_idx(root / "fashion-mnist" / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(root / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz")
    items = []
    source = "Fashion-MNIST test set (Zalando Research; Debian dataset-fashion-mnist)"
    for label, (name, category, (low, high)) in enumerate(FASHION_CLASSES):
        for n, index in enumerate(np.flatnonzero(labels == label)[:FASHION_PER_CLASS], 1):
            out = f"fashion-{label}-{index:05d}.png"
            Image.fromarray(images[index], "L").resize((112, 112), Image.Resampling.BICUBIC).save(
                IMAGES / out
            )
            sku = f"FASH-{label}-{n:02d}"
            description = f"Zalando article photo #{index} from the Fashion-MNIST test set."
            price = price_in(rng, low, high)
            items.append(
                Item(
                    sku,
                    f"{name}, style {n}",
                    category,
                    price,
                    description,
                    out,
                    "Zalando Research",
                    source,
                    "MIT",
                )
            )
    return items


def write_outputs(items: list[Item]) -> None:
    with (HERE / "products.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sku", "name", "category", "price", "description", "image"])
        for it in items:
            writer.writerow([it.sku, it.name, it.category, f"{it.price:.2f}", it.description, it.image])
    lines = [
        "# Demo catalog: where every photo comes from",
        "",
        "All photos are real photographs whose licence allows redistribution. Rebuilt by",
        "`catalog/demo/build_demo.py` from the sets described in `../shared/data/DATA.md` (downscaled to",
        f"at most {MAX_SIDE} px; Fashion-MNIST 28×28 grey images upscaled to 112 px PNG).",
        "",
        "Licences: GCompris photos are public domain or CC0-1.0 as listed per file (from the GCompris",
        "`README` files in Debian's `gcompris-qt-data`); OpenCV sample photos are Apache-2.0 / BSD-3-Clause;",
        "mvtb-data (Peter Corke's Machine Vision Toolbox) is MIT; Fashion-MNIST (Zalando Research) is MIT.",
        "",
        "| file | SKU | author | source | licence |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| images/{it.image} | {it.sku} | {it.author} | {it.source} | {it.licence} |" for it in items]
    (HERE / "ATTRIBUTION.md").write_text("\n".join(lines) + "\n")


def main(root: Path) -> None:
    IMAGES.mkdir(exist_ok=True)
    for old in IMAGES.iterdir():
        old.unlink()
    rng = random.Random(20261124)  # fixed seed: rebuilding gives the same prices
    items = gcompris_items(root, rng) + other_photo_items(root, rng) + fashion_items(root, rng)
    write_outputs(items)
    print(f"{len(items)} products written to {HERE}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/work/devdata"))
