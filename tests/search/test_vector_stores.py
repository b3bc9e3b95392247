"""The vector-store seam (search.index.store) on every engine, without Django: the same behaviour for the
annoy store (build + in-memory delta), the hnsw store (graph + change log) and the milvus store (a
collection on Milvus Lite, in-process: the server's client API, another engine underneath)."""

import itertools

import numpy as np
import pytest

from search.index import IndexReader, index_build
from search.index.annoy_store import AnnoyStore
from search.index.attrs import Attrs, VectorFilter
from search.index.hnsw import HnswStore, graph_build, log_path
from search.index.milvus import MilvusStore, collection_create, milvus_client
from search.index.publish import build_path

N, DIM = 3000, 32
ONE_PERCENT = 7  # category 7 holds 30 of the 3000 vectors


def catalog(seed: int = 0):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((N, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(N, dtype=np.int64) * 2 + 1  # ids are not row numbers
    attrs = Attrs.of(ids // 2, np.arange(N) % 100, (np.arange(N) % 50) * 100, np.ones(N, dtype=bool))
    return ids, vectors, attrs


_collections = itertools.count(1)


def open_store(kind: str, root, ids, vectors, attrs, *, exact_rows: int, milvus=None):
    if kind == "milvus":
        # The engine has no exact cut-over of ours: exact_rows 0 asks for its HNSW index, else FLAT.
        name = f"seam{next(_collections)}"
        index = "FLAT" if exact_rows else "HNSW"
        collection_create(milvus, name, fingerprint="fp", dim=DIM, index_type=index)
        store = MilvusStore(milvus, name, ef=16)
        store.upsert(ids, vectors, attrs, mark=0.0)
        store.flush()
        return store
    if kind == "annoy":
        manifest = index_build(vectors, ids, root=root, fingerprint="fp", n_trees=10, attrs=attrs)
        reader = IndexReader(build_path(root, manifest.version))
        # exact_threshold 0: the trees answer (a catalog this small would otherwise be searched exactly).
        return AnnoyStore(reader, exact_threshold=0, search_k=2000, exact_floats=exact_rows * DIM)
    graph_build(
        root, ids=ids, vectors=vectors, attrs=attrs, fingerprint="fp", m=16, ef_construction=100, mark=0.0
    )
    return HnswStore(root, exact_floats=exact_rows * DIM)


class Writer:
    """Changes a store the way its backend is written to (hnsw: only inside writing())."""

    def __init__(self, store):
        self.store = store

    def __getattr__(self, name):
        def call(*args, **kwargs):
            if isinstance(self.store, HnswStore):
                with self.store.writing():
                    return getattr(self.store, name)(*args, **kwargs)
            return getattr(self.store, name)(*args, **kwargs)

        return call


@pytest.fixture
def milvus(_milvus_lite_folder):
    """A client on the session's Milvus Lite folder; the collections a test made are dropped after it."""
    client = milvus_client(_milvus_lite_folder)
    before = set(client.list_collections())
    yield client
    for name in set(client.list_collections()) - before:
        client.drop_collection(name)


@pytest.fixture(params=["annoy", "hnsw", "milvus"])
def store(request, tmp_path):
    ids, vectors, attrs = catalog()
    milvus = request.getfixturevalue("milvus") if request.param == "milvus" else None
    return open_store(
        request.param, tmp_path / request.param, ids, vectors, attrs, exact_rows=100, milvus=milvus
    )


def one(image_id: int, category: int = 3, cents: int = 500, active: bool = True) -> Attrs:
    return Attrs.of([image_id // 2], [category], [cents], [active])


def test_an_added_vector_is_found_at_once_and_a_deleted_one_is_gone(store):
    _, vectors, _ = catalog()
    new = np.random.default_rng(5).standard_normal(DIM).astype(np.float32)

    Writer(store).upsert(np.array([999_999]), new[None, :], one(999_999), mark=1.0)
    ids, scores = store.search(new, 3)
    assert ids[0] == 999_999 and scores[0] == pytest.approx(1.0, abs=1e-5)
    assert store.count() == N + 1 and store.sync_mark == 1.0

    Writer(store).delete(np.array([999_999, 1]), mark=2.0)  # id 1 is row 0 of the catalog
    ids, _ = store.search(new, 10)
    assert 999_999 not in ids
    assert 1 not in store.search(vectors[0], 10)[0]
    assert store.count() == N - 1 and list(store.contains(np.array([1, 3, 999_999]))) == [3]


def test_a_replaced_vector_moves_and_a_deactivated_one_is_not_returned(store):
    _, vectors, _ = catalog()
    Writer(store).upsert(np.array([1]), vectors[100][None, :], one(1))  # id 1 now looks like row 100
    assert 1 in store.search(vectors[100], 2)[0]
    assert 1 not in store.search(vectors[0], 5)[0]

    Writer(store).upsert(np.array([1]), vectors[100][None, :], one(1, active=False))
    assert 1 not in store.search(vectors[100], 5)[0]
    assert store.count() == N  # deactivated, not deleted: re-activation needs no vector


@pytest.mark.parametrize("exact_rows", [0, 100])  # 0: always the trees / graph with a filter
@pytest.mark.parametrize("kind", ["annoy", "hnsw", "milvus"])
def test_a_filter_passing_one_percent_fills_k(request, tmp_path, kind, exact_rows):
    ids, vectors, attrs = catalog()
    milvus = request.getfixturevalue("milvus") if kind == "milvus" else None
    store = open_store(kind, tmp_path, ids, vectors, attrs, exact_rows=exact_rows, milvus=milvus)
    flt = VectorFilter(categories=frozenset({ONE_PERCENT}))
    passing = ids[attrs.category == ONE_PERCENT]
    hits = 0
    for query in vectors[:20]:
        found, scores = store.search(query, 10, flt)
        assert len(found) == 10 and set(found) <= set(passing)
        assert np.all(np.diff(scores) <= 1e-6)
        exact = passing[np.argsort(-(vectors[attrs.category == ONE_PERCENT] @ query))[:10]]
        hits += len(set(found) & set(exact))
    assert hits / 200 >= 0.9  # recall@10 of the filtered search (random 32-d data: hard for trees)
    assert len(store.search(vectors[0], 50, flt)[0]) == 30  # all that pass, when fewer than k do


def test_price_and_excluded_product_filters(store):
    _, vectors, attrs = catalog()
    flt = VectorFilter(min_cents=1000, max_cents=1200, exclude_product=0)
    found, _ = store.search(vectors[20], 40, flt)
    rows = (found - 1) // 2
    assert len(found) == 40
    assert np.all((attrs.price_cents[rows] >= 1000) & (attrs.price_cents[rows] <= 1200))
    assert 1 not in found  # product 0 is image 1


def test_hnsw_readers_follow_the_writer_without_restart(tmp_path):
    ids, vectors, attrs = catalog()
    graph_build(
        tmp_path, ids=ids, vectors=vectors, attrs=attrs, fingerprint="fp", m=16, ef_construction=100, mark=0.0
    )
    reader, writer = HnswStore(tmp_path), HnswStore(tmp_path)  # two processes' copies
    new = np.random.default_rng(9).standard_normal(DIM).astype(np.float32)

    with writer.writing():
        writer.upsert(np.array([777_777]), new[None, :], one(777_777), mark=5.0)
        writer.delete(np.array([1]), mark=6.0)
    reader.refresh()
    assert reader.search(new, 1)[0][0] == 777_777 and 1 not in reader.contains(np.array([1]))
    assert reader.sync_mark == 6.0

    before = reader.table
    with writer.writing():
        writer.snapshot()
    reader.refresh()
    assert reader.version == writer.version and reader.table is before  # adopted, not reloaded
    later = HnswStore(tmp_path)  # a process started after the snapshot loads it
    assert later.search(new, 1)[0][0] == 777_777 and later.count() == N


def test_hnsw_changes_outside_the_writer_lock_are_refused_and_a_torn_log_tail_is_ignored(tmp_path):
    ids, vectors, attrs = catalog()
    graph_build(
        tmp_path, ids=ids, vectors=vectors, attrs=attrs, fingerprint="fp", m=16, ef_construction=100, mark=0.0
    )
    writer = HnswStore(tmp_path)
    with pytest.raises(RuntimeError, match="writing"):
        writer.delete(np.array([1]))
    with writer.writing():
        writer.delete(np.array([1]), mark=1.0)
    with open(log_path(tmp_path, writer.version), "ab") as log:
        log.write(b"HVL1\x10\x00")  # a writer killed in the middle of a record

    reader = HnswStore(tmp_path)
    assert reader.count() == N - 1  # the complete record applied, the fragment not
    with writer.writing():  # the next writer cuts the fragment and appends after it
        writer.delete(np.array([3]), mark=2.0)
    reader.refresh()
    assert reader.count() == N - 2 and reader.sync_mark == 2.0


def test_milvus_fills_k_from_the_passing_rows_when_the_engine_returns_fewer(milvus, monkeypatch):
    ids, vectors, attrs = catalog()
    store = open_store("milvus", None, ids, vectors, attrs, exact_rows=0, milvus=milvus)
    engine_search = store._engine_search

    def short(q, k, expression):  # as an HNSW search with a selective filter may come back
        found, scores = engine_search(q, k, expression)
        return found[:3], scores[:3]

    monkeypatch.setattr(store, "_engine_search", short)
    flt = VectorFilter(categories=frozenset({ONE_PERCENT}))
    wanted = attrs.category == ONE_PERCENT
    found, scores = store.search(vectors[0], 10, flt)
    exact = np.argsort(-(vectors[wanted] @ vectors[0]))[:10]
    assert list(found) == list(ids[wanted][exact])
    assert scores == pytest.approx((vectors[wanted] @ vectors[0])[exact], abs=1e-5)


def test_milvus_filters_are_engine_expressions():
    from search.index.milvus import filter_expression

    flt = VectorFilter(categories=frozenset({3, 1}), min_cents=100, max_cents=250, exclude_product=9)
    assert filter_expression(flt) == (
        "active == true and category in [1, 3] and price >= 100 and price <= 250 and product != 9"
    )
    assert filter_expression(VectorFilter(active_only=False)) == ""


def test_a_released_milvus_collection_is_loaded_when_a_process_opens_it(milvus):
    ids, vectors, attrs = catalog()
    store = open_store("milvus", None, ids, vectors, attrs, exact_rows=100, milvus=milvus)
    milvus.release_collection(store.name)  # as after a restart of the server (or of Milvus Lite)

    reopened = MilvusStore(milvus, store.name)
    assert reopened.search(vectors[5], 1)[0][0] == ids[5]
