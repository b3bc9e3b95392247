"""Search services: embedding photos, building the index, querying it and reporting its state.

Admin actions, API views, the shopper page, management commands and Celery tasks all call these.
"""

from search.embedder import SearchUnavailable

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
    embedding_inline,
    image_embed,
    images_embed,
    images_reembed_request,
    pending_images,
    stale_images_embed_request,
    stored_photo_embed_request,
)
from .feedback import FeedbackRecorded, FeedbackRefused, feedback_record, feedback_review, query_id_sign
from .product_status import ProductIndexState, ProductIndexStatus, product_index_statuses
from .query import Hit, PhotoSource, SearchFilters, SearchQuery, SearchResult, photo_search, similar_products
from .relevance import (
    RelevanceRunRefused,
    relevance_options_check,
    relevance_run,
    relevance_run_cancel,
    relevance_run_request,
    relevance_runs_expire_lost,
)
from .status import BuildSummary, ImageFailure, IndexState, IndexStatus, index_status
from .status_text import index_state_explained, index_state_label
from .stores import vector_stores_sync

__all__ = [
    "BuildFailed",
    "BuildSummary",
    "BuildsReaped",
    "EmbedSummary",
    "EmbeddingStorageError",
    "FeedbackRecorded",
    "FeedbackRefused",
    "Hit",
    "PhotoSource",
    "SearchFilters",
    "SearchQuery",
    "SearchResult",
    "ImageFailure",
    "IndexStatus",
    "IndexState",
    "ProductIndexState",
    "ProductIndexStatus",
    "RelevanceRunRefused",
    "SearchUnavailable",
    "catalog_embed_pending",
    "embedding_inline",
    "feedback_record",
    "feedback_review",
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
    "stale_images_embed_request",
    "stored_photo_embed_request",
    "pending_images",
    "product_index_statuses",
    "relevance_options_check",
    "relevance_run",
    "relevance_run_cancel",
    "relevance_run_request",
    "relevance_runs_expire_lost",
    "photo_search",
    "query_id_sign",
    "similar_products",
    "vector_stores_sync",
]
