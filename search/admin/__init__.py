"""Search admin: the index dashboard and build history (dashboard), what search adds to the catalog's
product admin (products: index status, similar products, photo search, re-embed), the relevance
self-test (relevance) and shoppers' feedback on search hits to review (feedback)."""

from .dashboard import ImageEmbeddingAdmin, IndexBuildAdmin
from .feedback import SearchFeedbackAdmin
from .products import SearchProductAdmin
from .relevance import RelevanceRunAdmin

__all__ = [
    "ImageEmbeddingAdmin",
    "IndexBuildAdmin",
    "RelevanceRunAdmin",
    "SearchFeedbackAdmin",
    "SearchProductAdmin",
]
