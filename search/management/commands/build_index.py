"""Build the search index inline: embed pending photos, build, publish, print the manifest summary."""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.management.progress import tqdm_progress
from search.embedder import SearchUnavailable
from search.models import IndexBuild
from search.services import index_build_request, index_build_run


class Command(BaseCommand):
    help = "Embed pending photos and build + publish a new search index (the site keeps serving meanwhile)."

    def handle(self, *args, **options) -> None:
        build = index_build_request(enqueue=False)
        try:
            with tqdm(desc="embed", unit="photo", disable=None) as bar:
                build = index_build_run(build_id=build.pk, progress=tqdm_progress(bar))
        except SearchUnavailable as exc:
            raise CommandError(str(exc)) from exc
        if build.status == IndexBuild.Status.FAILED:
            raise CommandError(f"Build #{build.pk} failed: {build.error} (the previous index keeps serving)")
        if build.status != IndexBuild.Status.SUCCEEDED:
            raise CommandError(
                f"Build #{build.pk} is {build.status}: another build is running; it will run after that one."
            )
        self._summary(build)

    def _summary(self, build: IndexBuild) -> None:
        params = ", ".join(f"{key}={value}" for key, value in sorted(build.params.items()))
        self.stdout.write(self.style.SUCCESS(f"Build #{build.pk} published as {build.version}"))
        self.stdout.write(f"  fingerprint: {build.fingerprint}")
        self.stdout.write(f"  vectors: {build.vectors} of dimension {build.dim}")
        self.stdout.write(f"  photos embedded first: {build.done}, failed: {build.failed}")
        self.stdout.write(f"  size: {build.size_bytes / 1e6:.1f} MB; params: {params}")
