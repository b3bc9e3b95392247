"""Run the relevance self-test inline and print its report, or print stored runs.

    manage.py relevance_report [--photos 200] [--seed 2026] [--kinds reshot,scene]
    manage.py relevance_report --show 12      # a stored run's report
    manage.py relevance_report --history      # the trend: one line per run

Ctrl-C stops the run; what was searched so far is kept and printed as a partial (cancelled) run.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from catalog.management.progress import tqdm_progress
from search.models import RelevanceRun
from search.relevance.figures import TOP_K
from search.relevance.variants import KINDS
from search.services import RelevanceRunRefused, relevance_run, relevance_run_request
from search.services.relevance import DEFAULT_SEED
from search.services.relevance_report import (
    relevance_figure_rows,
    relevance_history,
    relevance_method,
    relevance_same_variants,
)


class Command(BaseCommand):
    help = (
        "Relevance self-test: search shopper-like variants of catalog photos (re-shot, in a scene) like a "
        f"shopper's photo and print R@1, R@{TOP_K}, same-category precision@{TOP_K} and the hardest products."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--photos", type=int, help="catalog photos to sample (default SEARCH_RELEVANCE_PHOTOS)"
        )
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="variant and sample seed")
        parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated: {', '.join(KINDS)}")
        shown = parser.add_mutually_exclusive_group()
        shown.add_argument("--show", type=int, metavar="RUN_ID", help="print a stored run; run nothing")
        shown.add_argument("--history", action="store_true", help="print the stored runs; run nothing")

    def handle(self, *args, **options) -> None:
        if options["history"]:
            self._history()
            return
        if options["show"] is not None:
            run = RelevanceRun.objects.filter(pk=options["show"]).first()
            if run is None:
                raise CommandError(f"There is no self-test #{options['show']} (see --history).")
            self._report(run)
            return
        kinds = [kind.strip() for kind in options["kinds"].split(",") if kind.strip()]
        try:
            run = relevance_run_request(
                photos=options["photos"], seed=options["seed"], kinds=kinds, enqueue=False
            )
        except RelevanceRunRefused as exc:
            raise CommandError(str(exc)) from exc
        try:
            with tqdm(desc="self-test", unit="search", disable=None) as bar:
                run = relevance_run(run_id=run.pk, progress=tqdm_progress(bar))
        except KeyboardInterrupt as interrupt:
            run.refresh_from_db()
            self._report(run)
            message = f"Interrupted: self-test #{run.pk} covers {run.done} of {run.total} searches."
            raise CommandError(message) from interrupt
        self._report(run)
        if run.status == RelevanceRun.Status.FAILED:
            raise CommandError(f"Self-test #{run.pk} failed: {run.error}")

    def _report(self, run: RelevanceRun) -> None:
        when = run.finished_at or run.requested_at
        took = f", {run.seconds:.0f} s" if run.seconds is not None else ""
        self.stdout.write(self.style.MIGRATE_HEADING(f"Relevance self-test #{run.pk}: {run.status}"))
        self.stdout.write(f"  {when:%Y-%m-%d %H:%M} UTC{took}")
        self.stdout.write(f"Model: {run.model_name or '?'} (fingerprint {run.fingerprint or '?'})")
        if run.model_warning:
            self.stdout.write(self.style.WARNING(f"  {run.model_warning}"))
        if run.error:
            self.stdout.write(self.style.ERROR(f"  {run.error}"))
        self.stdout.write("How the variants were made:")
        for line in relevance_method(run):
            self.stdout.write(f"  - {line}")
        rows = relevance_figure_rows(run)
        if rows:
            self.stdout.write(f"\n  {'':<14}{'R@1':>7}{'R@10':>7}{'same-category P@10':>21}{'searches':>10}")
            for row in rows:
                self.stdout.write(
                    f"  {row.label:<14}{_share(row.r_at_1):>7}{_share(row.r_at_10):>7}"
                    f"{_share(row.category_p_at_10):>21}{row.queries:>10}"
                )
        self._hardest(run)
        others = list(relevance_same_variants(run)[:5])
        if others:
            self.stdout.write("\nSame variants, other runs (compare models here):")
            for other in others:
                self._history_line(other)

    def _hardest(self, run: RelevanceRun) -> None:
        if not run.hardest:
            return
        self.stdout.write(
            "\nHardest products (variants found first / in the first 10 / searched; taken for):"
        )
        for row in run.hardest:
            taken = (
                f"taken for {row['confused_sku']} {row['confused_name']} ({row['confused_count']}x)"
                if row["confused_with"]
                else "not found"
            )
            self.stdout.write(
                f"  {row['sku']:<18} {row['name'][:32]:<32} {row['found_first']}/{row['found_in_10']}/"
                f"{row['queries']}  {taken}"
            )

    def _history(self) -> None:
        runs = list(relevance_history())
        if not runs:
            self.stdout.write("No self-test has run yet.")
            return
        self.stdout.write(
            f"  {'run':>5}  {'date (UTC)':<16} {'status':<10} {'model (fingerprint)':<44} {'seed':>6} "
            f"{'photos':>6} {'R@1':>6} {'R@10':>6} {'P@10':>6}"
        )
        for run in runs:
            self._history_line(run)

    def _history_line(self, run: RelevanceRun) -> None:
        when = run.finished_at or run.requested_at
        self.stdout.write(
            f"  {'#' + str(run.pk):>5}  {when:%Y-%m-%d %H:%M} {run.status:<10} "
            f"{(run.fingerprint or '?')[:44]:<44} {run.seed:>6} "
            f"{len(run.image_ids):>6} {_share(run.r_at_1):>6} {_share(run.r_at_10):>6} "
            f"{_share(run.category_p_at_10):>6}"
        )


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
