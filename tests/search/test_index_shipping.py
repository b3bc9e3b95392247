"""Index builds shipped through a Django storage (several machines, no shared SEARCH_INDEX_DIR): the
publishing worker uploads, every other machine downloads, verifies and publishes locally. The storage
is Django's InMemoryStorage, a non-filesystem backend like object storage."""

from pathlib import Path

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from search.index import IndexCorrupt, current_index, current_version, index_build, manifest_read
from search.index.publish import build_path, builds_dir
from search.services.index_shipping import (
    POINTER_NAME,
    index_build_ship,
    index_follow_storage,
    index_published_fetch,
    index_storage_cleanup,
    published_version,
)

INDEX_STORAGE = {"BACKEND": "django.core.files.storage.InMemoryStorage"}


@pytest.fixture
def index_storage(settings):
    """STORAGES["index"] in memory, named by SEARCH_INDEX_STORAGE, empty for each test."""
    from search.services.index_shipping import forget_follow_schedule

    settings.STORAGES = {**settings.STORAGES, "index": INDEX_STORAGE}
    settings.SEARCH_INDEX_STORAGE = "index"
    forget_follow_schedule()
    yield storages["index"]
    forget_follow_schedule()


def local_build(root: Path, seed: int = 0, n: int = 50) -> str:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(1000 * seed, 1000 * seed + n, dtype=np.int64)
    return index_build(vectors, ids, root=root, fingerprint="f", n_trees=2, publish=True).version


def stored(storage, name: str) -> bytes:
    with storage.open(name, "rb") as handle:
        return handle.read()


def test_a_shipped_build_is_fetched_verified_and_published_on_another_machine(index_storage, tmp_path):
    worker, web = tmp_path / "worker-index", tmp_path / "web-index"
    version = local_build(worker)

    index_build_ship(index_storage, worker, version)
    assert published_version(index_storage) == version
    manifest = manifest_read(build_path(worker, version))
    for name in [*manifest.files, "manifest.json"]:
        assert (
            stored(index_storage, f"builds/{version}/{name}")
            == (build_path(worker, version) / name).read_bytes()
        )

    assert current_version(web) is None  # the web machine has nothing yet
    assert index_published_fetch(index_storage, web) == version
    assert current_version(web) == version
    reader = current_index(web)
    assert reader is not None and reader.version == version and len(reader) == 50
    assert [p.name for p in builds_dir(web).iterdir()] == [version]  # no temporary folder left


def test_a_newer_shipped_build_replaces_the_stale_local_one(index_storage, tmp_path):
    worker, web = tmp_path / "worker-index", tmp_path / "web-index"
    first = local_build(worker, seed=1)
    index_build_ship(index_storage, worker, first)
    index_published_fetch(index_storage, web)

    second = local_build(worker, seed=2)
    index_build_ship(index_storage, worker, second)
    assert index_published_fetch(index_storage, web) == second
    assert current_index(web).version == second
    found, _ = current_index(web).search(np.eye(16, dtype=np.float32)[0], 5)
    assert all(2000 <= image_id < 2050 for image_id in found.tolist())  # the second build's ids


def test_a_build_that_does_not_match_its_manifest_is_never_published(index_storage, tmp_path):
    worker, web = tmp_path / "worker-index", tmp_path / "web-index"
    good = local_build(worker, seed=1)
    index_build_ship(index_storage, worker, good)
    index_published_fetch(index_storage, web)
    bad = local_build(worker, seed=2)
    index_build_ship(index_storage, worker, bad)
    # The vectors file changes in the storage after upload: same size, different bytes.
    name = f"builds/{bad}/vectors.npy"
    data = bytearray(stored(index_storage, name))
    data[-1] ^= 0xFF
    index_storage.delete(name)
    index_storage.save(name, ContentFile(bytes(data)))

    with pytest.raises(IndexCorrupt, match="vectors.npy does not match its sha256 checksum"):
        index_published_fetch(index_storage, web)
    assert current_version(web) == good  # the last good build keeps serving
    assert [p.name for p in builds_dir(web).iterdir()] == [good]  # the download was thrown away


def test_a_damaged_local_copy_is_downloaded_again(index_storage, tmp_path):
    worker, web = tmp_path / "worker-index", tmp_path / "web-index"
    version = local_build(worker)
    index_build_ship(index_storage, worker, version)
    index_published_fetch(index_storage, web)
    local = build_path(web, version)
    local.chmod(0o755)
    (local / "ids.npy").chmod(0o644)
    with open(local / "ids.npy", "r+b") as handle:
        handle.truncate(10)

    assert index_published_fetch(index_storage, web) == version
    assert (local / "ids.npy").read_bytes() == (build_path(worker, version) / "ids.npy").read_bytes()


@pytest.mark.parametrize(
    "pointer", [b'{"version": "../../etc"}', b'{"version": "x.tmp-1"}', b"not json", b'{"v": 1}']
)
def test_a_pointer_naming_no_usable_build_is_refused(index_storage, tmp_path, pointer):
    index_storage.save(POINTER_NAME, ContentFile(pointer))

    with pytest.raises(IndexCorrupt):
        index_published_fetch(index_storage, tmp_path / "web-index")
    assert not (tmp_path / "web-index").exists()


def test_nothing_shipped_leaves_the_local_index_alone(index_storage, tmp_path):
    web = tmp_path / "web-index"
    version = local_build(web)

    assert index_published_fetch(index_storage, web) == version


def test_storage_cleanup_keeps_the_newest_and_the_published_build(index_storage, tmp_path):
    worker = tmp_path / "worker-index"
    versions = []
    for seed in range(4):
        versions.append(local_build(worker, seed=seed))
        index_build_ship(index_storage, worker, versions[-1])

    assert index_storage_cleanup(index_storage, keep=2) == versions[:2]
    assert sorted(index_storage.listdir("builds")[0]) == versions[2:]
    assert published_version(index_storage) == versions[3]


@pytest.mark.django_db
def test_the_build_service_ships_what_it_publishes_and_queries_elsewhere_follow(
    index_storage, indexed_shop, settings, tmp_path, photo_bytes
):
    """The worker's build service uploads on publish; a process whose SEARCH_INDEX_DIR is empty (another
    machine) fetches the build at start-up and its search finds the product."""
    from search.services import PhotoSource, photo_search
    from tests.search.shop_helpers import build_now

    build = build_now()
    assert build.status == "succeeded", build.error
    assert published_version(index_storage) == build.version

    settings.SEARCH_INDEX_DIR = tmp_path / "another-machine"
    index_follow_storage(wait=True)  # what start-up does (search.services.warm_up)
    assert current_version(settings.SEARCH_INDEX_DIR) == build.version

    result = photo_search(PhotoSource(data=photo_bytes("hammer1.webp")), k=3, objects=False)
    assert result.hits[0].product.sku == indexed_shop[0]["hammer"].sku
