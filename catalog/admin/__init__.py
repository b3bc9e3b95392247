"""Catalog admin for merchandisers: products (list, photos, actions, import, duplicates), flagged pictures."""

from .moderation import CategoryAdmin, FlaggedImageAdmin, ImportJobAdmin
from .products import ProductAdmin

__all__ = ["CategoryAdmin", "FlaggedImageAdmin", "ImportJobAdmin", "ProductAdmin"]
