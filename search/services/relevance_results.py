"""What a relevance run records from its searches: one Outcome per variant (from the hits of the
shoppers' search) and, at the end, the figures, per kind too, and the hardest products (with the names
kept at run time). The arithmetic is search.relevance.figures."""

from __future__ import annotations

from catalog.models import Product, ProductImage
from search.relevance.figures import TOP_K, Outcome, figures, figures_by_kind, hardest

HARDEST_SHOWN = 12


def outcome_of(image: ProductImage, kind: str, hits) -> Outcome:
    """Where the photo's own product came among the first TOP_K hits, and what came first."""
    shown = hits[:TOP_K]
    rank = next((place for place, hit in enumerate(shown, 1) if hit.product.pk == image.product_id), None)
    category = image.product.category_id
    top = shown[0] if shown else None
    return Outcome(
        image_id=image.pk,
        product_id=image.product_id,
        kind=kind,
        rank=rank,
        top_product_id=top.product.pk if top else None,
        top_image_id=top.image.pk if top else None,
        top_score=round(top.score, 4) if top else 0.0,
        same_category=None if category is None else sum(hit.product.category_id == category for hit in shown),
        shown=len(shown),
    )


def run_figures(outcomes: list[Outcome], thumbnails: dict[tuple[int, str], str]) -> dict:
    """The RelevanceRun fields the figures fill; ``thumbnails`` holds the missed variants by (image, kind)."""
    overall = figures(outcomes)
    return {
        "r_at_1": overall.r_at_1,
        "r_at_10": overall.r_at_10,
        "category_p_at_10": overall.category_p_at_10,
        "by_kind": {"all": overall.as_dict()}
        | {k: f.as_dict() for k, f in figures_by_kind(outcomes).items()},
        "hardest": _hardest_rows(outcomes, thumbnails),
        "outcomes": [outcome.as_dict() for outcome in outcomes],
    }


def _hardest_rows(outcomes: list[Outcome], thumbnails: dict) -> list[dict]:
    """The hardest products with names kept at run time (the history stays readable after deletions)."""
    rows = [product.as_dict() for product in hardest(outcomes, limit=HARDEST_SHOWN)]
    ids = {row["product_id"] for row in rows} | {row["confused_with"] for row in rows if row["confused_with"]}
    products = {p.pk: p for p in Product.objects.filter(pk__in=ids)}
    for row in rows:
        for key, prefix in (("product_id", ""), ("confused_with", "confused_")):
            product = products.get(row[key])
            row[f"{prefix}sku"] = product.sku if product else ""
            row[f"{prefix}name"] = product.name if product else ""
        row["variant_thumbnail"] = thumbnails.get((row["worst_image_id"], row["worst_kind"]), "")
    return rows
