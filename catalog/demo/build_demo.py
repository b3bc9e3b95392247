"""Rebuild the demo catalog (images/, products.csv, ATTRIBUTION.md) from real photos in Debian's and
PyPI's packages. What is sold, and under which name and price, is in stock.py beside this file.

Run once by a maintainer, not at install time: the output is committed, so `make demo` and CI need
neither the packages nor a network. Fetch the sources first (../shared/data/DATA.md), then:

    sh ../shared/data/fetch-dev-data.sh /work/devdata
    .venv/bin/python catalog/demo/build_demo.py /work/devdata

Besides what fetch-dev-data.sh lays out, this unpacks the GCompris "details" pictures from the same
gcompris-qt-data package, and downloads Debian's tuxpaint-stamps-default (160 MB) into DIR/deb.

Only photos whose licence allows redistribution are used; Fashion-MNIST (28 px) stays a benchmark set.
Every photo is at least MIN_SIDE px on its longer side and at most MAX_SIDE.
"""

import csv
import random
import re
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import stock
from PIL import Image

HERE = Path(__file__).resolve().parent
IMAGES = HERE / "images"
RCCX = HERE.parents[2] / "shared" / "data" / "rccx.py"  # beside fetch-dev-data.sh
MAX_SIDE = 800
MIN_SIDE = 300  # the longer side; GCompris' photos are 320 px wide
REDISTRIBUTABLE = re.compile(
    r"^(Public Domain|CC0-1\.0|CC-BY(-SA)?-[\d.]+|MIT|Apache-2\.0 / BSD-3-Clause|GPL-2\.0-or-later)$"
)
TUXPAINT_DEB = "tuxpaint-stamps-default"
TUXPAINT_SOURCE = "Tux Paint stamps (Debian tuxpaint-stamps-default 2022.06.04)"
TUXPAINT_AUTHOR = "Bill Kendrick and the Tux Paint contributors"


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


def price_in(rng: random.Random, low: int, high: int) -> Decimal:
    # Shop-like prices ending in .99, .49 or .00 so price filters have something to bite on.
    return Decimal(rng.randint(low + 1, high + 1)) - Decimal(rng.choice(["0.01", "0.51", "1.00"]))


def sku_for(prefix: str, stem: str) -> str:
    return f"{prefix}-{re.sub(r'[^A-Z0-9]+', '-', stem.upper()).strip('-')}"[:64]


def save_photo(image: Image.Image, name: str) -> str:
    """Saves an RGB WebP of at most MAX_SIDE px; cut-outs (alpha) go on white, padded to a square."""
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
    if image.mode == "RGBA" and image.getchannel("A").getextrema()[0] < 255:
        side = max(max(image.size) * 11 // 10, MIN_SIDE)
        canvas = Image.new("RGBA", (side, side), (255, 255, 255, 255))
        canvas.alpha_composite(image, ((side - image.width) // 2, (side - image.height) // 2))
        image = canvas
    image = image.convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    if max(image.size) < MIN_SIDE:
        raise SystemExit(f"{name}: {image.size} is below {MIN_SIDE} px")
    out = f"{name}.webp"
    image.save(IMAGES / out, quality=85)
    return out


def readme_licences(readme: Path) -> dict[str, tuple[str, str, str]]:
    """file name -> (author, source, licence) from a GCompris README (Debian copyright style blocks)."""
    result = {}
    for block in readme.read_text().split("\n\n"):
        fields = dict(re.findall(r"^(Copyright|Source|License|Comment): (.*)$", block, re.M))
        source = fields.get("Source") or fields.get("Comment", "")
        files = re.findall(r"^\s*(\S+\.webp)\s*$", block, re.M)
        for name in files:
            name = name.replace("screDriver", "screwDriver")  # typo in the upstream README
            result[name] = (fields["Copyright"], source, _licence_id(fields["License"]))
    return result


def _licence_id(text: str) -> str:
    """One spelling per licence: "Public domain" -> "Public Domain", "CC-BY-SA 4.0" -> "CC-BY-SA-4.0"."""
    text = text.strip()
    return "Public Domain" if text.lower() == "public domain" else re.sub(r"^(CC-BY(?:-SA)?) ", r"\1-", text)


def gcompris_items(root: Path, rng: random.Random) -> list[Item]:
    items = []
    folders = [
        ("tools", "TOOL", stock.GCOMPRIS_TOOLS),
        ("others", "HOME", stock.GCOMPRIS_OTHERS),
        ("fishes", "FISH", stock.GCOMPRIS_FISHES),
    ]
    for folder, prefix, table in folders:
        licences = readme_licences(root / "gcompris" / folder / "README")
        for stem, (name, category, (low, high), description) in table.items():
            author, source, licence = licences[f"{stem}.webp"]
            image = save_photo(Image.open(root / "gcompris" / folder / f"{stem}.webp"), f"{folder}-{stem}")
            item = Item(
                sku_for(prefix, stem),
                name,
                category,
                price_in(rng, low, high),
                description,
                image,
                author,
                source,
                licence,
            )
            items.append(item)
    licences = readme_licences(root / "gcompris" / "monuments" / "README")
    category, (low, high), description = stock.POSTER
    for stem, title in stock.GCOMPRIS_MONUMENTS.items():
        author, source, licence = licences[f"{stem}.webp"]
        image = save_photo(Image.open(root / "gcompris" / "monuments" / f"{stem}.webp"), f"poster-{stem}")
        item = Item(
            sku_for("POST", stem),
            f"Poster: {title}",
            category,
            price_in(rng, low, high),
            description,
            image,
            author,
            source,
            licence,
        )
        items.append(item)
    return items


def details_items(root: Path, rng: random.Random) -> list[Item]:
    """Whole pictures of GCompris' "details" activity: Van Gogh paintings and landmark photos."""
    rcc = root / "x" / "gcompris-qt-data" / "usr" / "share" / "gcompris-qt" / "rcc" / "details.rcc"
    out = root / "x" / "gcompris-details"
    if not out.exists():
        subprocess.run([sys.executable, str(RCCX), str(out), str(rcc)], check=True, capture_output=True)
    folder = next(out.rglob("*_background.webp")).parent
    licences = readme_licences(folder / "README")
    items = []
    tables = [
        ("ART", "Art print: ", stock.ART_PRINT, stock.GCOMPRIS_DETAILS_PAINTINGS),
        ("POST", "Poster: ", stock.POSTER, stock.GCOMPRIS_DETAILS_PHOTOS),
    ]
    for prefix, kind, (category, (low, high), description), table in tables:
        for stem, title in table.items():
            author, source, licence = licences[f"{stem}_background.webp"]
            image = save_photo(Image.open(folder / f"{stem}_background.webp"), f"{prefix.lower()}-{stem}")
            item = Item(
                sku_for(prefix, stem),
                kind + title,
                category,
                price_in(rng, low, high),
                description,
                image,
                author,
                source,
                licence,
            )
            items.append(item)
    return items


def tuxpaint_items(root: Path, rng: random.Random) -> list[Item]:
    stamps = root / "x" / TUXPAINT_DEB / "usr" / "share" / "tuxpaint" / "stamps"
    if not stamps.exists():
        (root / "deb").mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", TUXPAINT_DEB], cwd=root / "deb", check=True)
        deb = next((root / "deb").glob(f"{TUXPAINT_DEB}_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root / "x" / TUXPAINT_DEB)], check=True)
    items = []
    for path, (name, category, (low, high), description) in stock.TUXPAINT.items():
        stem = Path(path).stem
        image = save_photo(Image.open(stamps / path), f"tuxpaint-{stem}")
        item = Item(
            sku_for("TUX", stem),
            name,
            category,
            price_in(rng, low, high),
            description,
            image,
            TUXPAINT_AUTHOR,
            f"{TUXPAINT_SOURCE}: stamps/{path}",
            "GPL-2.0-or-later",
        )
        items.append(item)
    return items


def package_photo_items(root: Path, rng: random.Random) -> list[Item]:
    sources = [
        (
            "opencv",
            "OCV",
            stock.OPENCV,
            "OpenCV contributors",
            "OpenCV samples/data (Debian opencv-doc 4.6.0)",
            "Apache-2.0 / BSD-3-Clause",
        ),
        (
            "mvtb",
            "MVTB",
            stock.MVTB,
            "Peter Corke",
            "Machine Vision Toolbox data (PyPI mvtb-data 1.6.1)",
            "MIT",
        ),
    ]
    items = []
    for folder, prefix, table, author, source, licence in sources:
        for file, (name, category, (low, high), description) in table.items():
            stem = Path(file).stem
            image = save_photo(Image.open(root / folder / file), f"{folder}-{stem}")
            item = Item(
                sku_for(prefix, stem),
                name,
                category,
                price_in(rng, low, high),
                description,
                image,
                author,
                f"{source}: {file}",
                licence,
            )
            items.append(item)
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
        "All photos are real photographs whose licence allows redistribution, rebuilt by",
        "`catalog/demo/build_demo.py` (see `docs/demo-data.md`); downscaled to at most "
        f"{MAX_SIDE} px, cut-outs put on white.",
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
    items = (
        gcompris_items(root, rng)
        + tuxpaint_items(root, rng)
        + package_photo_items(root, rng)
        + details_items(root, rng)
    )
    for it in items:
        if not REDISTRIBUTABLE.match(it.licence):
            raise SystemExit(f"{it.image}: licence {it.licence!r} is not known to allow redistribution")
    write_outputs(items)
    print(f"{len(items)} products written to {HERE}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/work/devdata"))
