"""The self-test's figures from what each variant's search returned. No Django here.

- R@1: share of variants whose own product is the first result.
- R@10: share of variants whose own product is among the first 10 results.
- Same-category precision@10: over the variants of products that have a category, the mean share of
  the results shown (the first 10, or all of them in a catalog of fewer products) that are in the
  variant's own product's category (the product itself counts when it is there).
- Hardest products: those whose variants most often miss the first place, each with the product its
  variants were most often mistaken for (the wrong first result).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

TOP_K = 10


@dataclass(frozen=True)
class Outcome:
    """What one variant's search returned, as far as the figures need it."""

    image_id: int  # the catalog photo the variant was made from
    product_id: int
    kind: str
    rank: int | None  # 1-based place of the product among the first TOP_K results; None = not there
    top_product_id: int | None  # the first result (None: no result at all)
    top_image_id: int | None  # its photo that matched
    top_score: float
    same_category: int | None  # results shown in the product's category; None = product has no category
    shown: int  # results shown (at most TOP_K)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Figures:
    queries: int
    r_at_1: float | None  # None when there was no query
    r_at_10: float | None
    category_p_at_10: float | None  # None when no query's product has a category
    category_queries: int

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class HardProduct:
    product_id: int
    queries: int
    found_first: int  # variants whose first result was the product
    found_in_10: int
    worst_image_id: int  # the photo whose variant ranked the product lowest
    worst_kind: str
    confused_with: int | None  # the product most often first instead (None: it was simply not found)
    confused_image_id: int | None
    confused_count: int

    def as_dict(self) -> dict:
        return asdict(self)


def figures(outcomes: Sequence[Outcome]) -> Figures:
    if not outcomes:
        return Figures(0, None, None, None, 0)
    with_category = [o for o in outcomes if o.same_category is not None and o.shown]
    precision = (
        sum(o.same_category / o.shown for o in with_category) / len(with_category) if with_category else None
    )
    return Figures(
        queries=len(outcomes),
        r_at_1=sum(o.rank == 1 for o in outcomes) / len(outcomes),
        r_at_10=sum(o.rank is not None and o.rank <= TOP_K for o in outcomes) / len(outcomes),
        category_p_at_10=precision,
        category_queries=len(with_category),
    )


def figures_by_kind(outcomes: Iterable[Outcome]) -> dict[str, Figures]:
    kinds: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        kinds[outcome.kind].append(outcome)
    return {kind: figures(group) for kind, group in sorted(kinds.items())}


def hardest(outcomes: Iterable[Outcome], *, limit: int) -> list[HardProduct]:
    """Products with at least one variant not found first, hardest first: fewest found first (as a
    share), then fewest found in the first 10, then the lowest average place."""
    products: dict[int, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        products[outcome.product_id].append(outcome)
    hard = [_hard_product(pid, group) for pid, group in products.items() if any(o.rank != 1 for o in group)]
    hard.sort(
        key=lambda p: (
            p.found_first / p.queries,
            p.found_in_10 / p.queries,
            -_mean_place(products[p.product_id]),
            p.product_id,
        )
    )
    return hard[:limit]


def _hard_product(product_id: int, group: list[Outcome]) -> HardProduct:
    wrong = [o for o in group if o.rank != 1 and o.top_product_id is not None]
    confusions = Counter(o.top_product_id for o in wrong)
    confused_with, count = confusions.most_common(1)[0] if confusions else (None, 0)
    confused_image = next((o.top_image_id for o in wrong if o.top_product_id == confused_with), None)
    worst = max(group, key=lambda o: (_place(o), o.image_id))
    return HardProduct(
        product_id=product_id,
        queries=len(group),
        found_first=sum(o.rank == 1 for o in group),
        found_in_10=sum(o.rank is not None for o in group),
        worst_image_id=worst.image_id,
        worst_kind=worst.kind,
        confused_with=confused_with,
        confused_image_id=confused_image,
        confused_count=count,
    )


def _place(outcome: Outcome) -> int:
    return outcome.rank if outcome.rank is not None else TOP_K + 1


def _mean_place(group: list[Outcome]) -> float:
    return sum(_place(o) for o in group) / len(group)
