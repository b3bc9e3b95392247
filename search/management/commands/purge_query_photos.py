"""Delete kept query photos older than SEARCH_KEEP_QUERY_PHOTOS_DAYS (all of them when it is 0)."""

from django.core.management.base import BaseCommand, CommandError

from search.query_photos import query_photos_purge


class Command(BaseCommand):
    help = (
        "Delete shoppers' query photos kept in the media storage (queries/) that are older than "
        "SEARCH_KEEP_QUERY_PHOTOS_DAYS days (every kept photo when retention is off). Run daily."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, default=None, help="Override the retention period.")

    def handle(self, *args, days: int | None = None, **options) -> None:
        if days is not None and days < 0:
            raise CommandError("--days must be 0 or more.")
        deleted = query_photos_purge(days=days)
        self.stdout.write(f"Deleted {deleted} query photo(s).")
