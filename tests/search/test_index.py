"""search.index: nearest neighbours are the true ones, builds publish atomically, readers follow them."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from search.index import (
    IndexCorrupt,
    IndexReader,
    current_index,
    current_version,
    index_build,
    index_cleanup,
    index_publish,
)
from search.index import build as build_module
from search.index.publish import build_path, builds_dir


def clustered_unit_vectors(n: int, dim: int, *, clusters: int = 40, spread: float = 0.35, seed: int = 0):
    """Unit vectors around random centres: neighbours are meaningful, unlike uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    points = centres[rng.integers(0, clusters, n)] + spread * rng.normal(size=(n, dim))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points.astype(np.float32)


def brute_force(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    return ids[np.argsort(-(vectors @ query), kind="stable")[:k]]


def recall_at(reader: IndexReader, vectors, ids, queries, k: int = 10, **search) -> float:
    hits = 0
    for q in queries:
        found, _ = reader.search(q, k, **search)
        hits += len(set(found.tolist()) & set(brute_force(vectors, ids, q, k).tolist()))
    return hits / (k * len(queries))


@pytest.fixture
def dataset():
    vectors = clustered_unit_vectors(3000, 64)
    ids = np.arange(3000, dtype=np.int64) * 7 + 100  # image ids differ from row numbers
    queries = clustered_unit_vectors(3050, 64)[3000:]  # new points around the same centres
    return vectors, ids, queries


def build(root: Path, vectors, ids, **kw):
    kw.setdefault("n_trees", 10)
    return index_build(vectors, ids, root=root, fingerprint="test-model", **kw)


def test_exact_search_returns_true_neighbours_with_exact_cosines(tmp_path, dataset):
    vectors, ids, queries = dataset
    build(tmp_path, vectors, ids)
    reader = current_index(tmp_path)
    for q in queries[:10]:
        found, scores = reader.search(q, 10, exact_threshold=10**9)
        assert found.tolist() == brute_force(vectors, ids, q, 10).tolist()
        expected = vectors[np.searchsorted(ids, found)] @ q
        np.testing.assert_allclose(scores, np.clip(expected, 0, 1), atol=1e-5)


def test_annoy_search_recall_and_reranked_scores_are_exact(tmp_path, dataset):
    vectors, ids, queries = dataset
    build(tmp_path, vectors, ids)
    reader = current_index(tmp_path)
    assert recall_at(reader, vectors, ids, queries, exact_threshold=0, search_k=2000) >= 0.9
    found, scores = reader.search(queries[0], 10, exact_threshold=0, search_k=2000)
    np.testing.assert_allclose(scores, vectors[np.searchsorted(ids, found)] @ queries[0], atol=1e-5)
    assert np.all(np.diff(scores) <= 0), "scores are sorted best first"
    assert np.all((scores >= 0) & (scores <= 1))


def test_an_indexed_vector_finds_itself_first_with_score_one(tmp_path, dataset):
    vectors, ids, _ = dataset
    build(tmp_path, vectors, ids)
    found, scores = current_index(tmp_path).search(vectors[123], 3, exact_threshold=0, search_k=2000)
    assert found[0] == ids[123]
    assert scores[0] == pytest.approx(1.0, abs=1e-5)


def test_pca_build_searches_projected_but_scores_full_vectors(tmp_path, dataset):
    vectors, ids, queries = dataset
    manifest = build(tmp_path, vectors, ids, pca_dim=16)
    assert manifest.pca and manifest.index_dim == 16 and manifest.dim == 64
    assert "pca.npz" in manifest.files
    reader = current_index(tmp_path)
    assert recall_at(reader, vectors, ids, queries, exact_threshold=0, search_k=2000) >= 0.9
    found, scores = reader.search(queries[3], 5, exact_threshold=0, search_k=2000)
    np.testing.assert_allclose(scores, vectors[np.searchsorted(ids, found)] @ queries[3], atol=1e-5)


def test_manifest_describes_the_build_and_progress_is_reported(tmp_path, dataset):
    vectors, ids, _ = dataset
    events = []
    manifest = build(tmp_path, vectors, ids, extra={"build_id": 42}, progress=lambda *e: events.append(e))
    assert ("annoy-add", 3000, 3000) in events and ("annoy-build", 10, 10) in events
    assert events[-1] == ("publish", 1, 1)
    assert (manifest.count, manifest.dim, manifest.metric, manifest.n_trees) == (3000, 64, "angular", 10)
    assert manifest.fingerprint == "test-model" and manifest.extra == {"build_id": 42}
    on_disk = {p.name: p.stat().st_size for p in build_path(tmp_path, manifest.version).iterdir()}
    assert {name: on_disk[name] for name in manifest.files} == manifest.files
    assert current_version(tmp_path) == manifest.version
    assert os.readlink(tmp_path / "current") == os.path.join("builds", manifest.version)


def test_readers_swap_to_new_builds_while_queries_run(tmp_path, dataset):
    vectors, ids, queries = dataset
    build(tmp_path, vectors, ids)
    errors: list[BaseException] = []
    seen_versions: set[str] = set()
    stop = threading.Event()

    def query_forever():
        while not stop.is_set():
            try:
                reader = current_index(tmp_path)
                found, _ = reader.search(queries[0], 10, exact_threshold=0, search_k=500)
                assert len(found) == 10
                seen_versions.add(reader.version)
            except BaseException as exc:  # noqa: BLE001 - the test reports every failure
                errors.append(exc)

    threads = [threading.Thread(target=query_forever) for _ in range(3)]
    for t in threads:
        t.start()
    versions = []
    for round_ in range(3):
        time.sleep(0.1)
        # Different ids per build, so a result shows which build answered.
        versions.append(build(tmp_path, vectors, ids + 10**6 * (round_ + 1)).version)
        assert current_index(tmp_path).version == versions[-1]
        assert current_index(tmp_path).search(queries[0], 1)[0][0] >= 10**6 * (round_ + 1)
    time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert versions[-1] in seen_versions


def test_a_reader_held_by_a_running_query_survives_cleanup_of_its_build(tmp_path, dataset):
    vectors, ids, queries = dataset
    build(tmp_path, vectors, ids)
    old_reader = current_index(tmp_path)
    expected = old_reader.search(queries[0], 5, exact_threshold=0, search_k=2000)
    build(tmp_path, vectors[:100], ids[:100])
    index_cleanup(tmp_path, keep=1)
    assert not old_reader.path.exists()
    found, scores = old_reader.search(queries[0], 5, exact_threshold=0, search_k=2000)
    assert found.tolist() == expected[0].tolist()
    np.testing.assert_allclose(scores, expected[1])
    assert len(current_index(tmp_path)) == 100


def test_failed_build_leaves_previous_build_serving(tmp_path, dataset, monkeypatch):
    vectors, ids, queries = dataset
    good = build(tmp_path, vectors, ids)

    def crash(*args, **kwargs):
        raise RuntimeError("disk full while building trees")

    monkeypatch.setattr(build_module, "_annoy_stage", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        build(tmp_path, vectors[:100], ids[:100] + 5)
    assert current_version(tmp_path) == good.version
    assert [p.name for p in builds_dir(tmp_path).iterdir()] == [good.version]
    found, _ = current_index(tmp_path).search(queries[0], 5)
    assert set(found.tolist()) <= set(ids.tolist())


KILLED_BUILD_SCRIPT = """
import sys, time
import numpy as np
from search.index import build
def hang(*args, **kwargs):
    print("building trees", flush=True)
    time.sleep(120)
build._annoy_stage = hang
build.index_build(np.eye(8, dtype=np.float32), np.arange(8), root=sys.argv[1], fingerprint="x", n_trees=2)
"""


def test_killed_build_is_never_published_and_cleanup_removes_its_leftovers(tmp_path, dataset):
    vectors, ids, queries = dataset
    good = build(tmp_path, vectors, ids)
    repo = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_BUILD_SCRIPT, str(tmp_path)],
        cwd=repo,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "building trees"
        leftover = builds_dir(tmp_path) / next(
            p.name for p in builds_dir(tmp_path).iterdir() if ".tmp-" in p.name
        )
        assert (leftover / "vectors.npy").exists()  # the build had written files when it was killed
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert current_version(tmp_path) == good.version
    assert current_index(tmp_path).search(queries[0], 1)[0][0] in set(ids.tolist())
    assert index_cleanup(tmp_path, keep=5, tmp_max_age_seconds=0) == [leftover.name]
    assert not leftover.exists()


def test_incomplete_build_directory_cannot_be_published(tmp_path, dataset):
    vectors, ids, _ = dataset
    good = build(tmp_path, vectors, ids)
    half = builds_dir(tmp_path) / "29990101T000000000000Z-abcdef"
    half.mkdir()
    (half / "vectors.npy").write_bytes(b"partial")
    with pytest.raises(IndexCorrupt, match="manifest"):
        index_publish(tmp_path, half.name)
    for bad_name in ("../elsewhere", f"{good.version}.tmp-123", ""):
        with pytest.raises(ValueError, match="not the name of a build directory"):
            index_publish(tmp_path, bad_name)
    assert current_version(tmp_path) == good.version


def test_cleanup_keeps_current_and_newest_and_removes_stale_temporaries(tmp_path, dataset):
    vectors, ids, _ = dataset
    small_v, small_ids = vectors[:50], ids[:50]
    versions = [build(tmp_path, small_v, small_ids).version for _ in range(4)]
    index_publish(tmp_path, versions[1])  # an operator rolled back to an older build
    stale = builds_dir(tmp_path) / f"{versions[3]}.tmp-99999"  # left by a killed build
    stale.mkdir()
    old = time.time() - 3600
    os.utime(stale, (old, old))
    running = builds_dir(tmp_path) / f"{versions[3]}.tmp-88888"  # a build still in progress
    running.mkdir()
    long_running = builds_dir(tmp_path) / f"{versions[3]}.tmp-{os.getpid()}"  # old, but its builder lives
    long_running.mkdir()
    os.utime(long_running, (old, old))

    removed = index_cleanup(tmp_path, keep=1)

    remaining = sorted(p.name for p in builds_dir(tmp_path).iterdir())
    assert remaining == sorted([versions[1], versions[3], running.name, long_running.name])
    assert set(removed) == {versions[0], versions[2], stale.name}
    assert current_index(tmp_path).version == versions[1]


def test_empty_catalog_is_a_valid_index_that_finds_nothing(tmp_path):
    manifest = build(tmp_path, np.zeros((0, 32), np.float32), np.zeros(0, np.int64))
    reader = current_index(tmp_path)
    assert manifest.count == 0 and len(reader) == 0
    found, scores = reader.search(np.ones(32, np.float32), 10, exact_threshold=0)
    assert found.size == 0 and scores.size == 0
    assert reader.vectors_for([1, 2])[0].size == 0


def test_nothing_published_means_no_index(tmp_path):
    assert current_index(tmp_path / "never-built") is None


def test_query_with_wrong_dimension_is_a_clear_error(tmp_path, dataset):
    vectors, ids, _ = dataset
    build(tmp_path, vectors, ids)
    with pytest.raises(ValueError, match="query vector has 128 dimensions but index .* holds 64-dimensional"):
        current_index(tmp_path).search(np.ones(128, np.float32), 5)


def test_vectors_for_looks_up_by_image_id_and_skips_unknown_ids(tmp_path, dataset):
    vectors, ids, _ = dataset
    build(tmp_path, vectors, ids)
    wanted = [ids[5], 1, ids[2999], ids[0]]
    found, stored = current_index(tmp_path).vectors_for(wanted)
    assert found.tolist() == [ids[5], ids[2999], ids[0]]
    np.testing.assert_allclose(stored, vectors[[5, 2999, 0]])


@pytest.mark.parametrize(
    ("vectors", "ids", "message"),
    [
        (np.ones((3, 4), np.float32), np.array([1, 2, 2]), "unique"),
        (np.ones((3, 4), np.float32), np.array([1, 2]), "one entry per vector"),
        (np.array([[1, 0], [0, 0]], np.float32), np.array([10, 11]), "image id 11"),
        (np.ones(4, np.float32), np.array([1]), "2-d array"),
    ],
)
def test_bad_build_input_is_refused_before_touching_disk(tmp_path, vectors, ids, message):
    with pytest.raises(ValueError, match=message):
        build(tmp_path, vectors, ids)
    assert not builds_dir(tmp_path).exists()
    assert current_index(tmp_path) is None
