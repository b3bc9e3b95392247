"""Search admin: the index dashboard and build history (dashboard), and what search adds to the
catalog's product admin (products: index status, similar products, photo search, re-embed)."""

from .dashboard import ImageEmbeddingAdmin, IndexBuildAdmin
from .products import SearchProductAdmin

__all__ = ["ImageEmbeddingAdmin", "IndexBuildAdmin", "SearchProductAdmin"]
