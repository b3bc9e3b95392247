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

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from catalog.models import Product

from .images import photo_files_delete_unreferenced, product_image_create
from .import_rows import ImportFileError, ImportRow, read_csv_rows, read_folder_rows
from .products import (
    category_path_get_or_create,
    parse_currency,
    parse_price,
    product_create,
    product_update,
)

Progress = Callable[[int, int], None]


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
