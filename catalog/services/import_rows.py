"""Reading an import's rows: a CSV file, or a folder tree of photos, as ImportRow values.

Nothing here writes; catalog.services.imports applies the rows.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from django.core.files.storage import FileSystemStorage, storages
from django.utils.text import slugify

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
CSV_REQUIRED = ("sku", "name", "price", "image")
CSV_OPTIONAL = ("category", "description", "currency")
_IMAGE_SEPARATORS = re.compile(r"[;|]")
_SKU_MAX = 64
_NUL_STAND_IN = "\ue000"  # a private-use character no real CSV cell holds
# Bidirectional overrides and isolates ("Trojan source"): they make a name display as another.
_TEXT_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class ImportFileError(ValueError):
    """The import as a whole cannot start: missing folder or CSV, unreadable CSV, wrong header."""


@dataclass
class ImportRow:
    """One product to import, whichever mode it came from. ``row`` is the CSV line or file number."""

    row: int
    sku: str
    name: str
    category: list[str]
    price: str
    images: list[str]
    description: str = ""
    currency: str = ""
    # Folder rows carry no price or description: an existing product keeps what the shop set.
    update_fields: bool = True
    problem: str = ""  # set when the row cannot be imported as read (reported as the row's error)


def read_csv_rows(csv_path: Path) -> list[ImportRow]:
    """Rows of a CSV file; the header is checked here so a wrong file fails before anything changes."""
    if not csv_path.is_file():
        raise ImportFileError(f"The CSV file {csv_path} does not exist.")
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as handle:
            # Python's csv module stops the whole file at a NUL byte; a stand-in keeps it to its row.
            text = io.StringIO(handle.read().replace("\x00", _NUL_STAND_IN))
        reader = csv.DictReader(text, delimiter=_delimiter(text))
        _check_header(reader.fieldnames, csv_path)
        # Line numbers as a spreadsheet shows them: the header is line 1.
        return [_csv_row(record, reader.line_num) for record in reader]
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{csv_path.name} is not UTF-8 text (save it as CSV UTF-8).") from exc
    except csv.Error as exc:
        raise ImportFileError(f"{csv_path.name} is not a valid CSV file ({exc}).") from exc


def _delimiter(handle) -> str:
    """ "," normally; ";" for files saved by spreadsheets in locales where the comma is the decimal mark."""
    header = handle.readline()
    handle.seek(0)
    return ";" if header.count(";") > header.count(",") else ","


def _check_header(fieldnames: list[str] | None, csv_path: Path) -> None:
    expected = "sku,name,category,price,description,image"
    if not fieldnames:
        raise ImportFileError(f"{csv_path.name} is empty; expected a header line: {expected}")
    columns = [(name or "").strip().lower() for name in fieldnames]
    missing = [name for name in CSV_REQUIRED if name not in columns]
    unknown = [name for name in columns if name not in CSV_REQUIRED + CSV_OPTIONAL]
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown column(s) {', '.join(unknown)}")
        problem = "; ".join(problems)
        raise ImportFileError(f"Wrong CSV header in {csv_path.name}: {problem}. Expected: {expected}")


def _csv_row(record: dict[str | None, str | list[str] | None], line: int) -> ImportRow:
    values = {(key or "").strip().lower(): value for key, value in record.items() if key is not None}

    def text(name: str) -> str:
        value = values.get(name)
        return value.strip() if isinstance(value, str) else ""

    return ImportRow(
        problem=_control_character_problem(values),
        row=line,
        sku=text("sku"),
        name=text("name"),
        category=[part.strip() for part in text("category").split(">") if part.strip()],
        price=text("price"),
        images=[part.strip() for part in _IMAGE_SEPARATORS.split(text("image")) if part.strip()],
        description=text("description"),
        currency=text("currency"),
    )


def _control_character_problem(values: dict[str, str | list[str] | None]) -> str:
    """Why a row's cells cannot be imported as text, or "" when they can.

    Control characters (NUL, escape, ...) and bidirectional overrides have no place in a product
    name or description: they corrupt exports and pages, or make a name display as something else.
    Tabs and line breaks (a quoted multi-line description) are fine.
    """
    for column, value in values.items():
        for char in value if isinstance(value, str) else "":
            shown = "\x00" if char == _NUL_STAND_IN else char
            if shown in _TEXT_CONTROLS or (unicodedata.category(shown) == "Cc" and shown not in "\t\n\r"):
                return f"column {column!r} contains the control character U+{ord(shown):04X}"
    return ""


def read_folder_rows(images_dir: Path) -> list[ImportRow]:
    """One row per photo under ``images_dir`` (sorted, hidden files skipped), numbered from 1."""
    # The shop's own stored photos may sit inside the tree (e.g. importing var/) when media are on this
    # disk: never re-import them. Media in object storage cannot be inside a local folder.
    media = storages["default"]
    media_root = Path(media.location).resolve() if isinstance(media, FileSystemStorage) else None
    files = sorted(
        path
        for path in images_dir.rglob("*")
        if path.is_file()
        and path.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in path.relative_to(images_dir).parts)
        and not (media_root and path.resolve().is_relative_to(media_root))
    )
    return [_folder_row(number, path.relative_to(images_dir)) for number, path in enumerate(files, start=1)]


def _folder_row(number: int, relative: Path) -> ImportRow:
    folders = list(relative.parent.parts)
    return ImportRow(
        row=number,
        sku=folder_sku(relative),
        name=name_from_filename(relative.stem),
        category=[name_from_filename(folder) for folder in folders],
        price="0",
        images=[relative.as_posix()],
        update_fields=False,
    )


def name_from_filename(stem: str) -> str:
    """ "claw-hammer_2" -> "Claw hammer 2", "BrandenburgGate" -> "Brandenburg Gate"."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", stem)  # camelCase names from cameras and exports
    words = " ".join(re.split(r"[-_\s]+", spaced)).strip()
    return words[:1].upper() + words[1:] if words else stem


def folder_sku(relative: Path) -> str:
    """A stable SKU from the photo's path: tools/hammers/claw-hammer_2.jpg -> tools-hammers-claw-hammer-2."""
    base = slugify(re.sub(r"[/_\s]+", "-", relative.with_suffix("").as_posix())) or "item"
    if len(base) <= _SKU_MAX:
        return base
    digest = hashlib.sha1(relative.as_posix().encode()).hexdigest()[:8]  # noqa: S324 (a name, not security)
    return f"{base[: _SKU_MAX - 9]}-{digest}"
