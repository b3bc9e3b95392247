"""Print the search index status: model (and its warnings), counts, failures and builds."""

from django.core.management.base import BaseCommand

from search.services import BuildSummary, IndexStatus, index_status, pending_images
from search.services.state import model_warning

LIST_LIMIT = 20


class Command(BaseCommand):
    help = "Show which model searches, how many photos are embedded/pending/failed, and the index builds."

    def handle(self, *args, **options) -> None:
        status = index_status()
        self._model(status)
        self.stdout.write(f"State: {status.state}")
        self.stdout.write(f"Vector store: {status.backend} (SEARCH_VECTOR_BACKEND)")
        self.stdout.write(
            f"Products (active): {status.products}; photos: {status.images}; embedded: {status.embedded}; "
            f"pending: {status.pending}; failed: {status.failed}"
        )
        self._pending(status)
        for fail in status.recent_failures:
            self.stdout.write(f"  failed: photo {fail.image_id} of {fail.product_sku}: {fail.reason}")
        if status.index_problem:
            self.stdout.write(self.style.ERROR(f"Index problem: {status.index_problem}"))
        self._build("Current index", status.current_build)
        self._build("Running build", status.running_build)
        if status.exact_fallback and status.embedded:
            self.stdout.write("No index for this model: queries scan every vector exactly (run build_index).")
        if status.last_error:
            self.stdout.write(self.style.ERROR(f"Last build failed: {status.last_error}"))

    def _model(self, status: IndexStatus) -> None:
        if status.model_error:
            self.stdout.write(self.style.ERROR(f"Model: unavailable ({status.model_error})"))
            return
        self.stdout.write(f"Model: {status.name} (requested {status.requested}), dimension {status.dim}")
        self.stdout.write(f"Weights: {status.weights_source}")
        self.stdout.write(f"Fingerprint: {status.fingerprint}")
        if model_warning(status):
            self.stdout.write(self.style.WARNING(f"WARNING: {model_warning(status)}"))

    def _pending(self, status: IndexStatus) -> None:
        if not status.pending or not status.fingerprint:
            return
        rows = pending_images(status.fingerprint).select_related("product").order_by("pk")[:LIST_LIMIT]
        for image in rows:
            self.stdout.write(f"  pending: photo {image.pk} of {image.product.sku}")
        if status.pending > LIST_LIMIT:
            self.stdout.write(f"  ... and {status.pending - LIST_LIMIT} more pending")

    def _build(self, title: str, build: BuildSummary | None) -> None:
        if build is None:
            self.stdout.write(f"{title}: none")
            return
        match = "" if build.fingerprint_matches else " (OTHER MODEL: not used for search)"
        # A store the worker keeps up to date without a build row (hnsw, milvus) has no build number.
        number = f"#{build.id} " if build.id else ""
        self.stdout.write(
            f"{title}: {number}{build.version or build.status} {build.vectors} vectors, dim {build.dim}, "
            f"{build.size_bytes / 1e6:.1f} MB, fingerprint {build.fingerprint}{match}"
        )
        if build.started_at and build.total:
            progress = f"{build.done + build.failed}/{build.total} ({build.failed} failed)"
            self.stdout.write(f"  embedding photos: {progress}")
