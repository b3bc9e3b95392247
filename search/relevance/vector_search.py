"""Where each query vector finds its product among a gallery of catalog vectors, as the self-test's
Outcome rows (search.relevance.figures). No Django here.

Exact cosine search, products ranked by their best photo (as the index's results are), whole photo
only: no object finder, no index. Used to compare two vector spaces (the backbone's and a projection's)
on the very same queries and gallery, not to reproduce the shoppers' search exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .figures import TOP_K, Outcome


def outcomes_by_vectors(
    queries: np.ndarray,
    query_images: Sequence[int],
    query_products: Sequence[int],
    query_kinds: Sequence[str],
    gallery: np.ndarray,
    gallery_images: Sequence[int],
    gallery_products: Sequence[int],
    categories: Mapping[int, int | None],
) -> list[Outcome]:
    """One Outcome per query row; vectors are L2-normalised rows, ``categories`` maps product -> category."""
    if len(queries) == 0 or len(gallery) == 0:
        return []
    scores = np.asarray(queries, dtype=np.float32) @ np.asarray(gallery, dtype=np.float32).T
    outcomes = []
    for row, order in enumerate(np.argsort(-scores, axis=1, kind="stable")):
        shown: list[tuple[int, int, float]] = []  # (product, image, score), best photo per product
        seen: set[int] = set()
        for column in order:
            product = int(gallery_products[column])
            if product not in seen:
                seen.add(product)
                shown.append((product, int(gallery_images[column]), float(scores[row, column])))
                if len(shown) == TOP_K:
                    break
        own = int(query_products[row])
        category = categories.get(own)
        rank = next((place for place, hit in enumerate(shown, 1) if hit[0] == own), None)
        outcomes.append(
            Outcome(
                image_id=int(query_images[row]),
                product_id=own,
                kind=str(query_kinds[row]),
                rank=rank,
                top_product_id=shown[0][0],
                top_image_id=shown[0][1],
                top_score=round(shown[0][2], 4),
                same_category=None
                if category is None
                else sum(categories.get(product) == category for product, _, _ in shown),
                shown=len(shown),
            )
        )
    return outcomes
