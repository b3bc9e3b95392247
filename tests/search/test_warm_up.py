"""Warm-up at process start (search.services.warm_up): after it, the first search loads nothing."""

import pytest

from search.services import PhotoSource, photo_search
from search.services.warm_up import search_warm_up

pytestmark = pytest.mark.django_db


def test_after_warm_up_the_first_search_loads_neither_model_nor_index(
    indexed_shop, fresh_embedder, photo_bytes, monkeypatch, settings
):
    import search.embedder
    import search.embedding
    import search.index.current
    from search.embedder import loaded_embedder
    from search.index import current_version

    search.index.current._resolved.clear()  # a fresh process: no index opened yet
    assert loaded_embedder() is None

    report = search_warm_up()

    assert loaded_embedder() is not None and report.model == loaded_embedder().name
    assert report.index_version == current_version(
        pytest.importorskip("django.conf").settings.SEARCH_INDEX_DIR
    )
    assert {"index", "model_load", "model_run", "ranking", "views", "total"} <= set(report.timings)
    loads: list[str] = []
    real_build, real_reader = search.embedding.build_embedder, search.index.current.IndexReader
    monkeypatch.setattr(
        search.embedding, "build_embedder", lambda config: loads.append("model") or real_build(config)
    )
    monkeypatch.setattr(
        search.index.current, "IndexReader", lambda path: loads.append("index") or real_reader(path)
    )

    result = photo_search(PhotoSource(data=photo_bytes("hammer1.webp")), k=3)

    assert result.hits[0].product.sku == indexed_shop[0]["hammer"].sku
    assert loads == []  # nothing was loaded lazily by the first search


def test_a_warm_up_on_an_empty_shop_leaves_searches_working(shop, photo_bytes):
    """Nothing built yet (a new shop, gunicorn warming each worker): the warm-up must not leave this
    process a vector store of the wrong width, which refused every later search with a 500."""
    from search.services import catalog_embed_pending

    catalog_embed_pending()  # embedded, not built: searched exactly from the fresh vectors
    report = search_warm_up()
    assert report.index_version in ("", None)

    result = photo_search(PhotoSource(data=photo_bytes("hammer1.webp")), k=3)  # vectors are fresh: exact

    assert result.hits and result.hits[0].product.sku == "hammer"
