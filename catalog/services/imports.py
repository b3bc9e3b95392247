"""Bulk import, one service for every entry point (import_catalog, the admin's task, load_demo).

Two modes:
- folder: every image under ``images_dir`` is a product; its sub-folders are (nested) categories,
  its name comes from the file name and its SKU from the relative path, so re-running is idempotent.
- CSV: columns sku,name,category,price,description,image (+ optional currency). ``image`` holds one
  or more paths relative to ``images_dir`` separated by ";" or "|"; ``category`` may be "Parent > Child".

Each row runs in its own savepoint: a bad row is reported with its number and skipped, the rest
imports. Re-running with the same input changes nothing and counts every row as unchanged.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from catalog.models import Product

from .images import photo_files_delete_unreferenced, product_image_create
from .products import (
    category_path_get_or_create,
    parse_currency,
    parse_price,
    product_create,
    product_update,
)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
CSV_REQUIRED = ("sku", "name", "price", "image")
CSV_OPTIONAL = ("category", "description", "currency")
_IMAGE_SEPARATORS = re.compile(r"[;|]")
_SKU_MAX = 64
_NUL_STAND_IN = "\ue000"  # a private-use character no real CSV cell holds
# Bidirectional overrides and isolates ("Trojan source"): they make a name display as another.
_TEXT_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

Progress = Callable[[int, int], None]


class ImportFileError(ValueError):
    """The import as a whole cannot start: missing folder or CSV, unreadable CSV, wrong header."""


@dataclass(frozen=True)
class RowError:
    row: int
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"


@dataclass
class ImportReport:
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    images_added: int = 0
    failed: int = 0
    errors: list[RowError] = field(default_factory=list)
    warnings: list[RowError] = field(default_factory=list)


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


class _RowFailed(Exception):
    """Raised inside a row's savepoint to roll the row back and report ``reason``."""


def catalog_import(
    *,
    csv_path: Path | None,
    images_dir: Path,
    progress: Progress | None = None,
    default_currency: str | None = None,
    report: ImportReport | None = None,
) -> ImportReport:
    """Import products from a CSV file, or from a folder tree of photos when ``csv_path`` is None.

    Raises ImportFileError when the input cannot be read at all; bad rows go to ``report.errors``.
    A caller that passes its own ``report`` sees counts and row errors fill in while rows import
    (the admin's import job shows failures live).
    """
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise ImportFileError(f"The images folder {images_dir} does not exist or is not a folder.")
    currency = parse_currency(default_currency or settings.CATALOG_DEFAULT_CURRENCY)
    rows = read_csv_rows(Path(csv_path)) if csv_path is not None else read_folder_rows(images_dir)
    report = report if report is not None else ImportReport()
    report.total = len(rows)
    seen_skus: dict[str, int] = {}
    for done, row in enumerate(rows, start=1):
        _import_one(row, images_dir=images_dir, currency=currency, report=report, seen_skus=seen_skus)
        if progress is not None:
            progress(done, len(rows))
    return report


# --- reading the input ------------------------------------------------------------------------


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
    # The shop's own stored photos may sit inside the tree (e.g. importing var/): never re-import them.
    media_root = Path(settings.MEDIA_ROOT).resolve()
    files = sorted(
        path
        for path in images_dir.rglob("*")
        if path.is_file()
        and path.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in path.relative_to(images_dir).parts)
        and not path.resolve().is_relative_to(media_root)
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


# --- importing one row ------------------------------------------------------------------------


def _import_one(
    row: ImportRow, *, images_dir: Path, currency: str, report: ImportReport, seen_skus: dict[str, int]
) -> None:
    stored: list[str] = []
    try:
        if row.problem:
            raise _RowFailed(row.problem)
        if row.sku in seen_skus:
            raise _RowFailed(f"SKU {row.sku!r} was already used on row {seen_skus[row.sku]}")
        with transaction.atomic():  # a savepoint: a failing row leaves no trace in the database
            outcome, added, warnings = _apply_row(
                row, images_dir=images_dir, currency=currency, stored=stored
            )
    except (_RowFailed, ValidationError) as exc:
        photo_files_delete_unreferenced(stored)  # ...nor in storage
        report.failed += 1
        report.errors.append(
            RowError(row.row, _message(exc) if isinstance(exc, ValidationError) else str(exc))
        )
        return
    if row.sku:
        seen_skus[row.sku] = row.row
    setattr(report, outcome, getattr(report, outcome) + 1)
    report.images_added += added
    report.warnings.extend(RowError(row.row, warning) for warning in warnings)


def _apply_row(
    row: ImportRow, *, images_dir: Path, currency: str, stored: list[str]
) -> tuple[str, int, list[str]]:
    """Create or update the row's product and add its photos; returns (outcome, photos added, warnings)."""
    if not row.images:
        raise _RowFailed("no image given (the image column is empty)")
    paths = [_image_path(images_dir, name) for name in row.images]
    fields = {
        "name": row.name,
        "price": parse_price(row.price),
        "currency": parse_currency(row.currency) if row.currency else currency,
        "category": category_path_get_or_create(row.category),
        "description": row.description,
    }
    product = Product.objects.filter(sku=row.sku).first() if row.sku else None
    if product is None:
        product = product_create(sku=row.sku, **fields)
        outcome = "created"
    elif not row.update_fields:
        outcome = "unchanged"
    else:
        before = _snapshot(product)
        product_update(product=product, **fields)
        outcome = "updated" if _snapshot(product) != before else "unchanged"
    added, warnings = _add_images(product, paths, images_dir, stored)
    if added and outcome == "unchanged":
        outcome = "updated"
    return outcome, added, warnings


def _snapshot(product: Product) -> tuple:
    return (product.name, product.price, product.currency, product.category_id, product.description)


def _image_path(images_dir: Path, name: str) -> Path:
    path = (images_dir / name).resolve()
    if not path.is_relative_to(images_dir.resolve()):
        raise _RowFailed(f"image {name!r} is outside the images folder")
    if not path.is_file():
        raise _RowFailed(f"image file {name!r} not found")
    return path


def _add_images(
    product: Product, paths: list[Path], images_dir: Path, stored: list[str]
) -> tuple[int, list[str]]:
    added, warnings = 0, []
    for path in paths:
        shown = path.relative_to(images_dir.resolve()).as_posix()
        try:
            with path.open("rb") as handle:
                result = product_image_create(product=product, file=handle, original_name=path.name)
        except ValidationError as exc:
            raise _RowFailed(f"image {shown!r}: {_message(exc)}") from exc
        except OSError as exc:
            raise _RowFailed(f"image {shown!r} could not be read ({exc.strerror or exc})") from exc
        added += int(result.created)
        if result.created:
            stored.append(result.image.image.name)
        warnings.extend(f"image {shown!r}: {warning}" for warning in result.warnings)
    return added, warnings


def _message(exc: ValidationError) -> str:
    return " ".join(str(message) for message in exc.messages)


__all__ = [
    "ImportFileError",
    "ImportReport",
    "ImportRow",
    "RowError",
    "catalog_import",
]
