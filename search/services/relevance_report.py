"""What a relevance self-test report says, in one place for the admin page and the command: how the
variants were made, the figures per kind, the trend and the runs that searched the same variants."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from search.models import RelevanceRun
from search.relevance.figures import TOP_K
from search.relevance.variants import KIND_LABELS as VARIANT_LABELS
from search.relevance.variants import RECIPES

KIND_LABELS = {"all": "all variants", **VARIANT_LABELS}


@dataclass(frozen=True)
class FigureRow:
    kind: str
    label: str
    queries: int
    r_at_1: float | None
    r_at_10: float | None
    category_p_at_10: float | None
    category_queries: int


def relevance_method(run: RelevanceRun) -> list[str]:
    """How the run's variants were made and what the figures mean, as sentences."""
    searched = len(run.image_ids)
    sample = (
        f"all {searched} photos of active products"
        if searched >= run.catalog_photos
        else f"{searched} of the {run.catalog_photos} photos of active products, sampled with seed {run.seed}"
    )
    lines = [
        f"Photos: {sample}; {len(run.kinds)} variant(s) of each, made with seed {run.seed} "
        f"(recipe version {run.recipe_version}): the same seed makes the same variants for any model.",
        *(
            f"{KIND_LABELS.get(kind, kind).capitalize()}: {RECIPES[kind]}."
            for kind in run.kinds
            if kind in RECIPES
        ),
        f"Scenes: {run.scenes or 'not loaded'}.",
        f"Each variant was searched like a shopper's photo (the whole photo and the things found in it, "
        f"no filters) and the first {TOP_K} results were read. R@1: the product itself came first; "
        f"R@{TOP_K}: it was among the first {TOP_K}; same-category P@{TOP_K}: the share of those results "
        "in the product's own category.",
        "The variants are made from the very photos the index holds, so these figures are an upper bound "
        "of what a shopper's own photo (another angle, another light) gets.",
    ]
    if run.product_ids:
        lines.insert(
            0,
            f"Only the photos of {len(run.product_ids)} products were sampled: the held-out products of a "
            "projection, which its training never saw (nor their photos or variants).",
        )
    if run.projection_id:
        lines.append(
            f"Searched with projection #{run.projection_id} on top of the backbone: a trial before switching "
            "to it (it is not in use). Its catalog vectors are the stored backbone vectors, projected, "
            "searched exactly (no index of that model yet); the current model's run on the same variants "
            "follows it."
        )
    if run.not_searchable:
        lines.append(
            f"{run.not_searchable} sampled photo(s) had no vector of this model yet (still being embedded, "
            "or failed): their products could not be found, and that counts against the figures."
        )
    if run.unreadable:
        lines.append(f"{run.unreadable} sampled photo(s) could not be read and were left out.")
    if run.status == RelevanceRun.Status.CANCELLED and run.done < run.total:
        lines.append(f"Stopped early: the figures cover {run.done} of {run.total} searches.")
    return lines


def relevance_figure_rows(run: RelevanceRun) -> list[FigureRow]:
    kinds = ["all", *[kind for kind in run.kinds if kind in run.by_kind]]
    return [
        FigureRow(
            kind=kind,
            label=KIND_LABELS.get(kind, kind),
            queries=run.by_kind[kind]["queries"],
            r_at_1=run.by_kind[kind]["r_at_1"],
            r_at_10=run.by_kind[kind]["r_at_10"],
            category_p_at_10=run.by_kind[kind]["category_p_at_10"],
            category_queries=run.by_kind[kind]["category_queries"],
        )
        for kind in kinds
        if kind in run.by_kind
    ]


def relevance_history(*, limit: int = 30) -> QuerySet[RelevanceRun]:
    """The latest runs, newest first (the trend), without their per-variant outcomes."""
    return RelevanceRun.objects.defer("outcomes", "hardest").order_by("-requested_at", "-id")[:limit]


def relevance_same_variants(run: RelevanceRun) -> QuerySet[RelevanceRun]:
    """Other finished runs that searched exactly this run's variants (any model): a fair comparison."""
    if not run.variant_set:
        return RelevanceRun.objects.none()
    return (
        RelevanceRun.objects.filter(variant_set=run.variant_set, status=RelevanceRun.Status.SUCCEEDED)
        .exclude(pk=run.pk)
        .defer("outcomes", "hardest")
        .order_by("-finished_at", "-id")
    )


def relevance_latest() -> RelevanceRun | None:
    return RelevanceRun.objects.order_by("-requested_at", "-id").first()
