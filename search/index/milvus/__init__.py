"""The milvus vector store (pymilvus, imported lazily): one collection per model, a serving alias."""

from .collections import (
    MilvusUnavailable,
    alias_name,
    alias_swap,
    alias_target,
    collection_create,
    collection_facts,
    collection_name,
    milvus_client,
    shop_collections,
)
from .store import DEFAULT_EF, MilvusStore, filter_expression

__all__ = [
    "DEFAULT_EF",
    "MilvusStore",
    "MilvusUnavailable",
    "alias_name",
    "alias_swap",
    "alias_target",
    "collection_create",
    "collection_facts",
    "collection_name",
    "filter_expression",
    "milvus_client",
    "shop_collections",
]
