"""What a vector store knows about each vector besides the vector, and the filters searches apply to it.

Every store keeps, per image id, the product it shows, the product's own category (descendants are
resolved by the caller into a set of ids), its price in cents and whether it is active. Filters are
evaluated on these columns with NumPy (never a Python loop over the index) before or inside the search,
so a filtered query can fill k whenever k vectors pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

NO_CATEGORY = -1


@dataclass(frozen=True)
class Attrs:
    """Per-vector columns, aligned with an array of ids (row i describes ids[i])."""

    product: np.ndarray  # int64
    category: np.ndarray  # int64, NO_CATEGORY when the product has none
    price_cents: np.ndarray  # int64: prices have two decimals (enforced by the catalog)
    active: np.ndarray  # bool

    def __post_init__(self) -> None:
        lengths = {len(self.product), len(self.category), len(self.price_cents), len(self.active)}
        if len(lengths) != 1:
            raise ValueError(f"attribute columns differ in length: {sorted(lengths)}")

    def __len__(self) -> int:
        return len(self.product)

    @classmethod
    def of(cls, product, category, price_cents, active) -> Attrs:
        return cls(
            np.asarray(product, dtype=np.int64).reshape(-1),
            np.asarray(category, dtype=np.int64).reshape(-1),
            np.asarray(price_cents, dtype=np.int64).reshape(-1),
            np.asarray(active, dtype=bool).reshape(-1),
        )

    @classmethod
    def empty(cls, n: int = 0) -> Attrs:
        return cls.of(np.zeros(n), np.full(n, NO_CATEGORY), np.zeros(n), np.ones(n, dtype=bool))

    @classmethod
    def unknown(cls, n: int) -> Attrs:
        """For builds made before attributes were stored: every vector passes every filter in the
        engine (callers still check the database), so such a build serves as before."""
        return cls.of(np.full(n, -1), np.full(n, NO_CATEGORY), np.zeros(n), np.ones(n, dtype=bool))

    def take(self, rows: np.ndarray) -> Attrs:
        return Attrs(self.product[rows], self.category[rows], self.price_cents[rows], self.active[rows])

    def save(self, path: Path | BinaryIO) -> None:
        np.savez(
            path, product=self.product, category=self.category, price=self.price_cents, active=self.active
        )

    @classmethod
    def load(cls, path: Path | BinaryIO) -> Attrs:
        with np.load(path) as data:
            return cls.of(data["product"], data["category"], data["price"], data["active"])


@dataclass(frozen=True)
class VectorFilter:
    """Which vectors a search may return. None means "no condition" for each field."""

    categories: frozenset[int] | None = None  # the product's category must be one of these
    min_cents: int | None = None
    max_cents: int | None = None
    exclude_product: int | None = None
    active_only: bool = True  # hidden products are never shown to shoppers
    unknown_attrs_pass: bool = True  # rows of old builds (product -1) pass: the caller re-checks them

    def mask(self, attrs: Attrs) -> np.ndarray:
        """Boolean mask of the rows that pass (vectorised over the columns)."""
        keep = attrs.active.copy() if self.active_only else np.ones(len(attrs), dtype=bool)
        if self.categories is not None:
            wanted = np.fromiter(self.categories, dtype=np.int64, count=len(self.categories))
            keep &= np.isin(attrs.category, wanted)
        if self.min_cents is not None:
            keep &= attrs.price_cents >= self.min_cents
        if self.max_cents is not None:
            keep &= attrs.price_cents <= self.max_cents
        if self.exclude_product is not None:
            keep &= attrs.product != self.exclude_product
        if self.unknown_attrs_pass and self.constrains_attributes:
            keep |= attrs.product < 0
        return keep

    @property
    def constrains_attributes(self) -> bool:
        return any(
            value is not None
            for value in (self.categories, self.min_cents, self.max_cents, self.exclude_product)
        )


ALL = VectorFilter()
