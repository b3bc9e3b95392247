"""Search services: embedding photos, building the index, querying it and reporting its state.

Admin actions, API views, the shopper page, management commands and Celery tasks all call these.
"""

from .build_queue import (
    BuildsReaped,
    index_build_request,
    index_build_schedule_if_stale,
    index_builds_reap,
    index_fold_in_if_due,
)
from .builds import BuildFailed, index_build_run
from .embeddings import (
    EmbeddingStorageError,
    EmbedSummary,
    catalog_embed_pending,
    image_embed,
    images_embed,
    images_reembed_request,
    pending_images,
)
from .query import Hit, PhotoSource, SearchFilters, SearchResult, photo_search, similar_products
from .state import SearchUnavailable
from .status import (
    BuildSummary,
    ImageFailure,
    IndexStatus,
    ProductIndexStatus,
    index_status,
    product_index_statuses,
)
from .status_text import index_state_explained, index_state_label
from .stores import vector_stores_sync

__all__ = [
    "BuildFailed",
    "BuildSummary",
    "BuildsReaped",
    "EmbedSummary",
    "EmbeddingStorageError",
    "Hit",
    "PhotoSource",
    "SearchFilters",
    "SearchResult",
    "ImageFailure",
    "IndexStatus",
    "ProductIndexStatus",
    "SearchUnavailable",
    "catalog_embed_pending",
    "image_embed",
    "images_embed",
    "images_reembed_request",
    "index_build_request",
    "index_build_run",
    "index_build_schedule_if_stale",
    "index_builds_reap",
    "index_fold_in_if_due",
    "index_state_explained",
    "index_state_label",
    "index_status",
    "pending_images",
    "product_index_statuses",
    "photo_search",
    "similar_products",
    "vector_stores_sync",
]
