"""Search admin: the index dashboard and build history (dashboard), what search adds to the catalog's
product admin (products: index status, similar products, photo search, re-embed), and shoppers'
feedback on search hits to review (feedback)."""

from .dashboard import ImageEmbeddingAdmin, IndexBuildAdmin
from .feedback import SearchFeedbackAdmin
from .products import SearchProductAdmin

__all__ = ["ImageEmbeddingAdmin", "IndexBuildAdmin", "SearchFeedbackAdmin", "SearchProductAdmin"]
