"""System checks (``manage.py check``, run at every start) for search settings that work but mislead."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.compatibility)
def hnsw_is_one_machine(app_configs=None, **kwargs) -> list[Warning]:
    """The hnsw backend's graph and change log live on the writer's disk (SEARCH_INDEX_DIR); only
    annoy builds travel through SEARCH_INDEX_STORAGE. A web process on another machine finds no graph
    and searches every stored vector exactly, held in its memory: correct, but not what was meant."""
    if settings.SEARCH_VECTOR_BACKEND != "hnsw" or not settings.SEARCH_INDEX_STORAGE:
        return []
    return [
        Warning(
            "SEARCH_VECTOR_BACKEND=hnsw keeps its graph on this machine's disk; it is not shipped through "
            f"SEARCH_INDEX_STORAGE={settings.SEARCH_INDEX_STORAGE!r}.",
            hint=(
                "On several machines use SEARCH_VECTOR_BACKEND=annoy (builds are shipped) or milvus (a "
                "shared engine), or share SEARCH_INDEX_DIR; otherwise web processes elsewhere search all "
                "stored vectors exactly (docs/deployment.md)."
            ),
            id="search.W001",
        )
    ]
