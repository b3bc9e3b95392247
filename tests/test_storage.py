"""shop_search.storage: files on disk appear whole, and a model field follows STORAGES."""

import os

import pytest
from django.core.files.base import ContentFile, File
from django.core.files.storage import storages

from shop_search.cpu import torch_threads_per_process
from shop_search.storage import AtomicFileSystemStorage, StorageAlias


class SlowFile(File):
    """Content whose chunks arrive one by one; records whether the final name existed meanwhile."""

    def __init__(self, chunks: list[bytes], watch: str) -> None:
        super().__init__(None, name="slow.bin")
        self._chunks, self.watch, self.seen_early = chunks, watch, []

    def chunks(self, chunk_size=None):
        for chunk in self._chunks:
            self.seen_early.append(os.path.exists(self.watch))
            yield chunk

    @property
    def size(self) -> int:
        return sum(map(len, self._chunks))


def test_a_file_appears_only_once_it_is_whole(tmp_path):
    storage = AtomicFileSystemStorage(location=tmp_path)
    content = SlowFile([b"a" * 10, b"b" * 10, b"c" * 10], watch=str(tmp_path / "thumbs" / "x.jpg"))

    assert storage.save("thumbs/x.jpg", content) == "thumbs/x.jpg"

    assert content.seen_early == [False, False, False]  # never visible half-written
    assert (tmp_path / "thumbs" / "x.jpg").read_bytes() == b"a" * 10 + b"b" * 10 + b"c" * 10
    assert os.listdir(tmp_path / "thumbs") == ["x.jpg"]  # no temporary file left
    assert (tmp_path / "thumbs" / "x.jpg").stat().st_mode & 0o777 == 0o644  # readable by the web server


def test_a_name_taken_meanwhile_is_never_overwritten(tmp_path, monkeypatch):
    """Two writers both found the name free; the one that finishes second gets another name."""
    storage = AtomicFileSystemStorage(location=tmp_path)
    first = storage.save("products/p.jpg", ContentFile(b"first photo"))
    real = storage.get_available_name
    answers = iter(["products/p.jpg"])  # what the second writer saw before the first one finished
    monkeypatch.setattr(
        storage, "get_available_name", lambda name, **kw: next(answers, None) or real(name, **kw)
    )

    second = storage.save("products/p.jpg", ContentFile(b"second photo"))

    assert first == "products/p.jpg" and second != first and second.startswith("products/p_")
    assert (tmp_path / first).read_bytes() == b"first photo"
    assert (tmp_path / second).read_bytes() == b"second photo"
    assert sorted(os.listdir(tmp_path / "products")) == sorted(["p.jpg", second.split("/")[1]])


def test_a_storage_alias_follows_the_settings(settings):
    alias = StorageAlias("imports")
    settings.STORAGES = {
        **settings.STORAGES,
        "imports": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    alias.save("a.csv", ContentFile(b"sku\n"))
    assert storages["imports"].exists("a.csv")
    settings.STORAGES = {**settings.STORAGES, "imports": {"BACKEND": "catalog.models.ImportFilesStorage"}}
    assert not alias.exists("a.csv")  # the new backend, not the one the alias first saw


@pytest.mark.parametrize(
    ("processes", "cores", "threads"), [(1, 8, 8), (2, 2, 1), (4, 2, 1), (3, 8, 2), (0, 4, 4)]
)
def test_torch_threads_share_the_cores_among_processes(processes, cores, threads):
    assert torch_threads_per_process(processes, cores=cores) == threads


@pytest.mark.parametrize(
    ("pool", "concurrency", "expected"),
    [("prefork", 2, 2), ("prefork", 4, 1), ("solo", 1, 4), ("threads", 8, 4)],
)
def test_a_celery_worker_shares_the_cores_among_its_pool_processes(
    settings, monkeypatch, pool, concurrency, expected
):
    from types import SimpleNamespace

    import shop_search.cpu
    from shop_search.celery import _share_cores_among_pool_processes

    monkeypatch.delenv("SEARCH_TORCH_THREADS", raising=False)
    monkeypatch.setattr(shop_search.cpu, "usable_cores", lambda: 4)
    _share_cores_among_pool_processes(sender=SimpleNamespace(pool_cls=pool, concurrency=concurrency))
    assert settings.SEARCH_TORCH_THREADS == expected


def test_allow_overwrite_replaces_the_file_whole(tmp_path):
    storage = AtomicFileSystemStorage(location=tmp_path, allow_overwrite=True)
    storage.save("index/current.json", ContentFile(b'{"version": "a"}'))

    assert storage.save("index/current.json", ContentFile(b'{"version": "b"}')) == "index/current.json"
    assert (tmp_path / "index" / "current.json").read_bytes() == b'{"version": "b"}'
    assert os.listdir(tmp_path / "index") == ["current.json"]
