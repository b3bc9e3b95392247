"""Load the demo catalog (catalog/demo/), embed its photos and build the index, all inline.

A search command (next to run_demo): it drives the catalog's import service, then search's own steps.

Uses the same import service as `import_catalog`, so running it again changes nothing: products are
matched by SKU and photos by content hash. The embedding and index steps skip work already done, and
nothing is left queued for a worker that this command did itself: the photos it stores are embedded
here (search.services.embedding_inline), the index is built here. The demo's admin user is made by
`run_demo`, which prints its password last, once the site answers.
"""

from pathlib import Path

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.management.progress import tqdm_progress
from catalog.models import ProductImage
from catalog.services import ImportFileError, catalog_import
from search.embedder import current_embedder
from search.services import (
    IndexState,
    catalog_embed_pending,
    embedding_inline,
    index_build_request,
    index_build_run,
    index_status,
)
from search.services.state import model_warning

DEMO_DIR = Path(apps.get_app_config("catalog").path) / "demo"


class Command(BaseCommand):
    help = "Load the demo catalog, embed its photos and build the search index (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--no-index", action="store_true", help="Only import products and photos.")

    def handle(self, *args, no_index: bool = False, **options):
        # Photos stored here are embedded right below; only what that leaves undone (--no-index, a
        # failure) is queued for the worker, in one task.
        with embedding_inline() as stored:
            self._import()
            if not no_index:
                self._embed()
        if no_index and stored:
            self.stdout.write(f"{len(stored)} new photos are queued for the worker to embed.")
        if not no_index:
            self._build_index()

    def _import(self) -> None:
        self.stdout.write(f"Importing the demo catalog from {DEMO_DIR} ...")
        with tqdm(desc="import", unit="product", disable=None) as bar:
            try:
                report = catalog_import(
                    csv_path=DEMO_DIR / "products.csv",
                    images_dir=DEMO_DIR / "images",
                    progress=tqdm_progress(bar),
                )
            except ImportFileError as exc:
                raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Products: {report.created} created, {report.updated} updated, {report.unchanged} unchanged, "
            f"{report.failed} failed; {report.images_added} photos added."
        )
        for error in report.errors:
            self.stderr.write(f"  {error}")

    def _embed(self) -> None:
        embedder = current_embedder()
        self.stdout.write(f"Embedding photos with {_describe_model(embedder)} ...")
        with tqdm(desc="embed", unit="photo", disable=None) as bar:
            summary = catalog_embed_pending(progress=tqdm_progress(bar), schedule_build=False)
        total = ProductImage.objects.count()
        self.stdout.write(
            f"Photos: {summary.embedded} embedded, {total - summary.embedded - summary.failed} already done, "
            f"{summary.failed} failed."
        )

    def _build_index(self) -> None:
        status = index_status()
        if status.state == IndexState.READY and status.current_build is not None:
            current = status.current_build
            self.stdout.write(f"Index {current.version} is up to date: {current.vectors} vectors.")
            return
        build = index_build_request(enqueue=False)  # run right here, as the build_index command does
        with tqdm(desc="index", unit="vector", disable=None) as bar:
            build = index_build_run(build_id=build.pk, progress=tqdm_progress(bar))
        if build is None or build.status != build.Status.SUCCEEDED:
            status = "missing" if build is None else f"{build.status} {build.error}".strip()
            # Another build may be running (e.g. a worker picked it up): the site still serves.
            self.stderr.write(f"Index build did not run here ({status}); the worker will build it.")
            return
        self.stdout.write(f"Index {build.version}: {build.vectors} vectors of dimension {build.dim}.")


def _describe_model(embedder) -> str:
    warning = model_warning(embedder)
    return f"{embedder.name} ({warning})" if warning else embedder.name
