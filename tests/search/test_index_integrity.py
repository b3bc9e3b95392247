"""search.index integrity: a damaged build is refused at load, never served, and never kills a process.

Files are damaged the way disks and operators do it: cut short, or one byte changed. Anything that
could SIGBUS runs in a child process, so a failure kills the child, not the test run.
"""

import ctypes
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from search.index import IndexCorrupt, IndexReader, current_index, index_build, index_health
from search.index.manifest import MANIFEST_NAME, manifest_read, manifest_write
from search.index.publish import build_dir_remove, build_path
from tests.search.test_index import clustered_unit_vectors

REPO = Path(__file__).resolve().parents[2]
PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2  # <linux/prctl.h>, <linux/capability.h>


@pytest.fixture
def dataset():
    vectors = clustered_unit_vectors(3000, 64)
    return vectors, np.arange(3000, dtype=np.int64) * 3 + 1


def build(root: Path, vectors, ids) -> str:
    return index_build(vectors, ids, root=root, fingerprint="test-model", n_trees=5).version


def damage(path: Path, how: str) -> None:
    """Truncate to half, or flip one byte in the middle (size unchanged: only a checksum sees it)."""
    path.chmod(0o644)  # published files are read-only: damage is a deliberate act (or root's)
    size = path.stat().st_size
    if how == "truncate":
        os.truncate(path, size // 2)
        return
    with open(path, "r+b") as fh:
        fh.seek(size // 2)
        byte = fh.read(1)
        fh.seek(size // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))


def test_manifest_records_the_size_and_sha256_of_every_file(tmp_path, dataset):
    version = build(tmp_path, *dataset)
    folder = build_path(tmp_path, version)
    manifest = manifest_read(folder)
    names = {"vectors.npy", "ids.npy", "id_order.npy", "items.annoy"}
    assert set(manifest.files) == set(manifest.checksums) == names
    for name in names:
        data = (folder / name).read_bytes()
        assert manifest.files[name] == len(data)
        assert manifest.checksums[name] == "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("how", ["truncate", "flip"])
@pytest.mark.parametrize("name", ["items.annoy", "vectors.npy", "ids.npy"])
def test_a_damaged_build_is_refused_and_the_previous_build_serves(tmp_path, dataset, name, how):
    vectors, ids = dataset
    old = build(tmp_path, vectors, ids)
    new = build(tmp_path, vectors, ids + 10**6)  # other ids: results show which build answered
    damage(build_path(tmp_path, new) / name, how)

    with pytest.raises(IndexCorrupt, match=name):
        IndexReader(build_path(tmp_path, new))
    reader = current_index(tmp_path)
    assert reader.version == old
    found, _ = reader.search(vectors[7], 3, exact_threshold=0, search_k=500)
    assert found[0] == ids[7]
    health = index_health(tmp_path)
    assert (health.published, health.serving, health.damaged) == (new, old, (new,))
    assert health.problem.startswith(f"The published index build {new} is damaged ({name} ")
    assert health.problem.endswith(f"serving the previous build {old}.")
    assert str(tmp_path) not in health.problem  # status pages show it: no server paths


def test_a_published_build_whose_directory_is_gone_or_manifest_garbled_is_not_served(tmp_path, dataset):
    vectors, ids = dataset
    old = build(tmp_path, vectors, ids)
    new = build(tmp_path, vectors, ids + 10**6)
    folder = build_path(tmp_path, new)
    folder.chmod(0o755)
    (folder / "manifest.json").chmod(0o644)
    (folder / "manifest.json").write_text('{"version": "')
    assert current_index(tmp_path).version == old
    assert "(manifest.json is not a valid index manifest" in index_health(tmp_path).problem

    newest = build(tmp_path, vectors, ids + 2 * 10**6)
    build_dir_remove(build_path(tmp_path, newest))  # `current` now points at nothing
    assert current_index(tmp_path).version == old
    assert index_health(tmp_path).damaged == (newest, new)
    assert "(manifest.json is missing: not a complete index build)" in index_health(tmp_path).problem


def test_sizes_are_checked_before_reading_and_a_short_file_is_named_with_both_sizes(tmp_path, dataset):
    version = build(tmp_path, *dataset)
    path = build_path(tmp_path, version) / "items.annoy"
    expected = path.stat().st_size
    damage(path, "truncate")
    with pytest.raises(IndexCorrupt, match=f"items.annoy is {expected // 2} bytes, expected {expected}"):
        IndexReader(path.parent)


def test_damaged_older_builds_are_skipped_and_without_any_intact_build_nothing_serves(tmp_path, dataset):
    vectors, ids = dataset
    oldest, middle, newest = (build(tmp_path, vectors, ids + 10**6 * i) for i in range(3))
    damage(build_path(tmp_path, newest) / "vectors.npy", "flip")
    damage(build_path(tmp_path, middle) / "ids.npy", "truncate")
    assert current_index(tmp_path).version == oldest
    assert index_health(tmp_path).damaged == (newest, middle)

    damage(build_path(tmp_path, oldest) / "items.annoy", "truncate")  # under the live reader
    assert current_index(tmp_path) is None
    health = index_health(tmp_path)
    assert health.serving is None and health.damaged == (newest, middle, oldest)
    assert "no earlier build is intact; searches compare stored vectors exactly" in health.problem


def test_a_manifest_without_checksums_is_verified_by_size_only(tmp_path, dataset):
    version = build(tmp_path, *dataset)
    folder = build_path(tmp_path, version)
    folder.chmod(0o755)
    (folder / MANIFEST_NAME).chmod(0o644)
    manifest = manifest_read(folder)
    legacy = {key: value for key, value in manifest.to_dict().items() if key != "checksums"}

    def write_legacy_manifest():  # as builds before checksums wrote it
        (folder / MANIFEST_NAME).write_text(json.dumps(legacy))

    write_legacy_manifest()
    damage(folder / "ids.npy", "flip")  # same size: not detectable without a checksum
    assert len(IndexReader(folder)) == 3000
    manifest_write(folder, manifest)  # the same build with its checksums
    with pytest.raises(IndexCorrupt, match="ids.npy does not match its sha256 checksum"):
        IndexReader(folder)
    write_legacy_manifest()
    damage(folder / "ids.npy", "truncate")
    with pytest.raises(IndexCorrupt, match="ids.npy is"):
        IndexReader(folder)


LIVE_TRUNCATION_SCRIPT = """
import json, os, sys
import numpy as np
from search.index import IndexCorrupt, current_index, index_health
from search.index import integrity

root, target, guard = sys.argv[1], sys.argv[2], sys.argv[3] == "guard"
if not guard:
    integrity.MappedFiles.damage = lambda self: ""  # what the reader did before the guard existed
query, exact = np.ones(64, np.float32), (10**9 if target == "vectors.npy" else 0)
reader = current_index(root)
reader.search(query, 5, exact_threshold=exact, search_k=500)  # the maps are in use
path = reader.path / target
path.chmod(0o644)
os.truncate(path, path.stat().st_size // 2)
try:
    reader.search(query, 5, exact_threshold=exact, search_k=500)
    held = "answered"
except IndexCorrupt as exc:
    held = f"IndexCorrupt: {exc}"
now = current_index(root)
found, _ = now.search(query, 5, exact_threshold=exact, search_k=500)
print(json.dumps({"held": held, "serving": now.version, "found": len(found),
                  "problem": index_health(root).problem}))
"""


def run_live_truncation(root: Path, target: str, guard: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", LIVE_TRUNCATION_SCRIPT, str(root), target, guard],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("target", ["vectors.npy", "items.annoy"])
def test_a_file_truncated_under_a_live_reader_is_an_error_and_a_fallback_not_sigbus(
    tmp_path, dataset, target
):
    vectors, ids = dataset
    old = build(tmp_path, vectors, ids)
    new = build(tmp_path, vectors, ids + 10**6)

    child = run_live_truncation(tmp_path, target, "guard")

    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout)
    assert result["held"].startswith(f"IndexCorrupt: {target} is now ")
    assert (result["serving"], result["found"]) == (old, 5)
    assert result["problem"].startswith(f"The published index build {new} is damaged ({target} is ")


@pytest.mark.parametrize("target", ["vectors.npy", "items.annoy"])
def test_without_the_size_guard_the_same_truncation_kills_the_process_with_sigbus(tmp_path, dataset, target):
    """Shows the test above exercises the real failure: the guard is what keeps the process alive."""
    vectors, ids = dataset
    build(tmp_path, vectors, ids)
    build(tmp_path, vectors, ids + 10**6)
    child = run_live_truncation(tmp_path, target, "no-guard")
    assert child.returncode == -signal.SIGBUS, (child.returncode, child.stdout, child.stderr)


def test_published_builds_are_read_only(tmp_path, dataset):
    version = build(tmp_path, *dataset)
    folder = build_path(tmp_path, version)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o555
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {0o444}


NON_ROOT_SCRIPT = """
import json, os, sys
import numpy as np
from search.index import index_build, index_cleanup
from search.index.publish import build_dir_remove, build_path

root = sys.argv[1]
versions = [
    index_build(np.eye(8, dtype=np.float32), np.arange(8), root=root, fingerprint="x", n_trees=2).version
    for _ in range(3)
]
folder = build_path(root, versions[-1])
refused = []
for attempt in (lambda: open(folder / "vectors.npy", "r+b"), lambda: open(folder / "extra", "wb"),
                lambda: os.unlink(folder / "ids.npy")):
    try:
        attempt()
    except PermissionError:
        refused.append(True)
removed = index_cleanup(root, keep=1)
left = sorted(os.listdir(os.path.join(root, "builds")))
print(json.dumps({"versions": versions, "refused": refused, "removed": removed, "left": left}))
"""


def without_permission_override() -> None:
    """In the child, as root: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the capability
    bounding set before exec, so file permissions bind root as they bind any other user."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_read_only_builds_refuse_writes_and_cleanup_still_removes_them(tmp_path):
    child = subprocess.run(
        [sys.executable, "-c", NON_ROOT_SCRIPT, str(tmp_path / "index")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        # CI runs as root, whom permissions do not stop.
        preexec_fn=without_permission_override if os.geteuid() == 0 else None,  # noqa: PLW1509
    )
    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout)
    assert result["refused"] == [True, True, True]
    assert sorted(result["removed"]) == result["versions"][:2]
    assert result["left"] == result["versions"][2:]
