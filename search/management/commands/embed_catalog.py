"""Embed every product photo that has no vector under the current model yet (inline, with progress)."""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.management.progress import tqdm_progress
from search.embedder import SearchUnavailable, current_embedder
from search.models import ImageEmbedding
from search.services import catalog_embed_pending, pending_images


class Command(BaseCommand):
    help = "Embed pending product photos with the current model (run build_index afterwards)."

    def handle(self, *args, **options) -> None:
        try:
            embedder = current_embedder()
        except SearchUnavailable as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Model: {embedder.label}")
        self.stdout.write(f"Fingerprint: {embedder.fingerprint}")
        todo = list(pending_images(embedder.fingerprint).values_list("pk", flat=True))
        with tqdm(total=len(todo), desc="embed", unit="photo", disable=None) as bar:
            summary = catalog_embed_pending(progress=tqdm_progress(bar))
        self.stdout.write(
            f"Photos: {summary.embedded} embedded, {summary.failed} failed, {summary.skipped} already done."
        )
        self._report_failures(embedder.fingerprint, todo)
        if summary.embedded:
            self.stdout.write("New vectors are searchable now; run build_index to add them to the index.")

    def _report_failures(self, fingerprint: str, image_ids: list[int]) -> None:
        failed = ImageEmbedding.objects.filter(
            image_id__in=image_ids, fingerprint=fingerprint, status=ImageEmbedding.Status.FAILED
        ).select_related("image__product")
        for row in failed:
            self.stderr.write(f"  failed: photo {row.image_id} of {row.image.product.sku}: {row.error}")
