"""Search admin: the index dashboard and build history (dashboard), what search adds to the catalog's
product admin (products: index status, similar products, photo search, re-embed), the relevance
self-test (relevance), shoppers' feedback on search hits to review (feedback) and the catalog-adapted
projections staff may switch to (projections)."""

from .dashboard import ImageEmbeddingAdmin, IndexBuildAdmin
from .feedback import SearchFeedbackAdmin
from .products import SearchProductAdmin
from .projections import AdaptedProjectionAdmin
from .relevance import RelevanceRunAdmin

__all__ = [
    "AdaptedProjectionAdmin",
    "ImageEmbeddingAdmin",
    "IndexBuildAdmin",
    "RelevanceRunAdmin",
    "SearchFeedbackAdmin",
    "SearchProductAdmin",
]
