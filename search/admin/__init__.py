"""Search admin: the index dashboard and build history (dashboard), and what search adds to the
catalog's product admin (products: index status, similar products, photo search, re-embed), and the
relevance self-test (relevance)."""

from .dashboard import ImageEmbeddingAdmin, IndexBuildAdmin
from .products import SearchProductAdmin
from .relevance import RelevanceRunAdmin

__all__ = ["ImageEmbeddingAdmin", "IndexBuildAdmin", "RelevanceRunAdmin", "SearchProductAdmin"]
