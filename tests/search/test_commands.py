"""embed_catalog, build_index and search_status as an operator runs them."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

import search.index
from search.models import ImageEmbedding, IndexBuild

pytestmark = pytest.mark.django_db


def run(name: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(name, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_embed_catalog_embeds_pending_photos_and_names_failures(shop):
    products, _ = shop
    Path(products["pan"].images.get().image.path).write_bytes(b"broken")

    out, err = run("embed_catalog")

    assert "efficientnet_lite0" in out and "fallback" in out
    assert "Photos: 5 embedded, 1 failed, 0 already done." in out
    assert "pan" in err and "not an image" in err
    assert ImageEmbedding.objects.filter(status="done").count() == 5
    assert "Photos: 0 embedded, 0 failed, 0 already done." in run("embed_catalog")[0]


def test_build_index_prints_the_manifest_summary(shop, settings):
    out, _ = run("build_index")

    build = IndexBuild.objects.get()
    assert build.status == "succeeded"
    assert f"published as {build.version}" in out
    assert f"vectors: 6 of dimension {build.dim}" in out
    assert f"fingerprint: {build.fingerprint}" in out
    assert f"n_trees={settings.SEARCH_ANNOY_TREES}" in out


def test_build_index_failure_is_a_command_error_and_keeps_the_old_index(shop, monkeypatch):
    run("build_index")

    def broken_build(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(search.index, "index_build", broken_build)
    with pytest.raises(CommandError, match="disk full.*previous index keeps serving"):
        run("build_index")


def test_build_index_on_an_empty_catalog_says_why():
    with pytest.raises(CommandError, match="Nothing to index"):
        run("build_index")


def test_search_status_reports_model_counts_failures_and_build(shop):
    products, _ = shop
    Path(products["cup"].images.get().image.path).write_bytes(b"broken")

    before, _ = run("search_status")
    assert "State: empty" in before and "pending: 6" in before
    assert "pending: photo" in before and "Current index: none" in before

    run("build_index")
    after, _ = run("search_status")
    build = IndexBuild.objects.get()
    assert "Model: efficientnet_lite0 (requested resnet50)" in after
    assert "WARNING: Using the fallback model efficientnet_lite0 instead of resnet50:" in after
    assert f"Fingerprint: {build.fingerprint}" in after
    assert "State: ready" in after and "embedded: 5; pending: 0; failed: 1" in after
    assert "failed: photo" in after and "cup" in after and "not an image" in after
    assert f"Current index: #{build.pk} {build.version} 5 vectors" in after
