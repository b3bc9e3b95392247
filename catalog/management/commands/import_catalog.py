"""python manage.py import_catalog [products.csv] --images DIR

Without a CSV, every photo under DIR becomes a product and its sub-folders become categories.
Bad rows are listed as "row N: reason" and skipped; the command fails only when the input as a
whole cannot be read (missing folder or CSV, wrong header).
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from catalog.management.progress import tqdm_progress
from catalog.services import ImportFileError, ImportReport, catalog_import

# Below this many rows a progress bar is only noise.
PROGRESS_MIN_ROWS = 20


class Command(BaseCommand):
    help = (
        "Import products and photos from a CSV file or a folder tree of photos. CSV: one product a row; "
        "image holds one or more paths relative to --images separated by ';' or '|'; category may be "
        "'Parent > Child'; an optional currency column overrides --currency. Folder: sub-folders are "
        "categories, each photo a product named after its file. Re-running changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "csv",
            nargs="?",
            type=Path,
            help="CSV with columns sku,name,category,price,description,image. Omit to import a folder tree.",
        )
        parser.add_argument(
            "--images",
            required=True,
            type=Path,
            help="Folder holding the photos (CSV image paths are relative to it).",
        )
        parser.add_argument(
            "--currency", default=None, help="Currency for rows without one (default: settings)."
        )
        parser.add_argument("--no-progress", action="store_true", help="Never show a progress bar.")

    def handle(
        self, *args, csv: Path | None, images: Path, currency: str | None, no_progress: bool, **options
    ):
        bar = _ProgressBar(enabled=not no_progress and sys.stderr.isatty())
        try:
            report = catalog_import(
                csv_path=csv, images_dir=images, progress=bar.update, default_currency=currency
            )
        except ImportFileError as exc:
            raise CommandError(str(exc)) from exc
        except ValidationError as exc:  # e.g. --currency XX
            raise CommandError(" ".join(exc.messages)) from exc
        finally:
            bar.close()
        self._print_report(report)

    def _print_report(self, report: ImportReport) -> None:
        for warning in report.warnings:
            self.stdout.write(self.style.WARNING(f"warning: {warning}"))
        for error in report.errors:
            self.stdout.write(self.style.ERROR(str(error)))
        summary = (
            f"{report.total} rows: {report.created} created, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.failed} failed; {report.images_added} photos added."
        )
        style = self.style.WARNING if report.failed else self.style.SUCCESS
        self.stdout.write(style(summary))


class _ProgressBar:
    """A tqdm bar on stderr, opened once the total is known and only when it is worth showing."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: tqdm | None = None

    def update(self, done: int, total: int) -> None:
        if not self.enabled or total < PROGRESS_MIN_ROWS:
            return
        if self.bar is None:
            self.bar = tqdm(total=total, unit="row", desc="Importing", file=sys.stderr)
            self._show = tqdm_progress(self.bar)
        self._show(done, total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
