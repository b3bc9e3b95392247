"""Train a catalog-adapted projection on some products and compare it with the backbone on the others.

    manage.py adapt_train [--variants 2] [--held-out 0.3] [--seed 2026] [--split-seed N]
        [--dim N] [--max-epochs 100]

Prints the held-out figures of the backbone and of the projection and which is better, and records the
projection (search.services.projections) for the admin's "Adapted projections" page, where staff can
switch to a better one. It never switches the site's model; a better one is also saved under
VAR_DIR/adapt/ as a file.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from catalog.management.progress import tqdm_progress
from search.embedding.adapt import AdaptConfig, AdaptError
from search.relevance.figures import TOP_K
from search.relevance.variants import ScenesUnavailable
from search.services.adapt import AdaptRefused, adapt_compare, adapt_features
from search.services.projections import projection_record
from search.services.relevance import DEFAULT_SEED


class Command(BaseCommand):
    help = (
        "Train a small projection on top of the backbone from the catalog's photos and their variants "
        "(training products only), and compare it with the backbone on the held-out products."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--variants", type=int, default=2, help="shopper-like variants per photo (1-20)")
        parser.add_argument("--held-out", type=float, default=0.3, help="share of products held out (0-1)")
        parser.add_argument(
            "--seed", type=int, default=DEFAULT_SEED, help="variants, split and training seed"
        )
        parser.add_argument(
            "--split-seed",
            type=int,
            help="seed of the product split and training (default: --seed); "
            "another split reuses the cached features",
        )
        parser.add_argument(
            "--dim",
            type=int,
            help="learn a smaller map of this many dimensions from the principal directions (the first "
            "slice's kind) instead of the default: a full map from the backbone itself, as wide as it",
        )
        parser.add_argument("--max-epochs", type=int, default=AdaptConfig.max_epochs)

    def handle(self, *args, **options) -> None:
        if not 0 < options["held_out"] < 1:
            raise CommandError(
                f"--held-out must be between 0 and 1 (a share of products), not {options['held_out']}."
            )
        split_seed = options["seed"] if options["split_seed"] is None else options["split_seed"]
        config = AdaptConfig(max_epochs=options["max_epochs"], seed=split_seed)
        if options["dim"] is not None:
            config = AdaptConfig.principal(
                out_dim=options["dim"], max_epochs=options["max_epochs"], seed=split_seed
            )
        try:
            config.check()
        except AdaptError as exc:
            raise CommandError(str(exc)) from exc
        started = time.monotonic()
        try:
            with tqdm(desc="backbone", unit="photo", disable=None) as bar:
                data = adapt_features(
                    variants=options["variants"], seed=options["seed"], progress=tqdm_progress(bar)
                )
            embedded = time.monotonic()
            result = adapt_compare(data, held_out=options["held_out"], seed=split_seed, config=config)
        except (AdaptRefused, ScenesUnavailable) as exc:
            raise CommandError(str(exc)) from exc
        trained = time.monotonic()
        recorded = projection_record(comparison=result, backbone_fingerprint=data.fingerprint)
        cached = " (cached)" if data.cached else ""
        out = self.stdout.write
        out(self.style.MIGRATE_HEADING("Catalog-adapted projection (held-out comparison)"))
        out(
            f"Backbone fingerprint {data.fingerprint}; "
            f"{len(data.features)} rows of {data.features.shape[1]} dims{cached}"
        )
        info = result.projection.trained
        out(
            f"Trained on {result.train_products} products ({result.train_rows} photos and variants), "
            f"{info['epochs']} epochs (best {info['best_epoch']}); "
            f"held out {result.held_out_products} products."
        )
        if result.feedback_rows:
            out(f"Shoppers' confirmed photos (feedback) among the rows: {result.feedback_rows}.")
        out(
            "Training never saw the held-out products' photos or variants; their variants are searched "
            "against the whole catalog's photos (exact cosine, whole photo: not the shoppers' index path)."
        )
        out(f"\n  {'':<24}{'R@1':>7}{f'R@{TOP_K}':>7}{f'same-category P@{TOP_K}':>21}{'searches':>10}")
        for label, row in (
            ("backbone", result.backbone),
            (f"projected ({result.projection.out_dim} d)", result.projected),
        ):
            out(
                f"  {label:<24}{_share(row.r_at_1):>7}{_share(row.r_at_10):>7}"
                f"{_share(row.category_p_at_10):>21}{row.queries:>10}"
            )
        out("")
        out((self.style.SUCCESS if result.better else self.style.WARNING)(result.verdict))
        if result.saved_to:
            out(f"Saved (not in use) to {result.saved_to}; fingerprint {result.projection.fingerprint}.")
        else:
            out("No file kept.")
        out(f"Recorded as projection #{recorded.pk}. The site's model is unchanged: staff switch to a better")
        out("projection from the admin (Adapted projections), after its self-test on the held-out products.")
        out(f"Backbone pass {embedded - started:.1f} s, training and comparison {trained - embedded:.1f} s.")


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
