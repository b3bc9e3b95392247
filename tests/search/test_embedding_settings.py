"""search.embedder: one backbone Embedder per process, built from the SEARCH_* settings (no database: which
projection follows it is tests/search/test_projections.py's)."""

import pytest

from search.embedder import backbone_embedder, reset_embedder


@pytest.fixture(autouse=True)
def fresh_embedder():
    reset_embedder()
    yield
    reset_embedder()


def test_test_settings_give_the_labelled_offline_fallback():
    embedder = backbone_embedder()
    assert embedder.requested == "resnet50"
    assert embedder.name == "efficientnet_lite0"
    assert embedder.fallback and embedder.pretrained and not embedder.untrained


def test_embedder_is_built_once_per_process():
    assert backbone_embedder() is backbone_embedder()


def test_settings_choose_backbone_untrained_mode_and_preprocessing(settings):
    settings.SEARCH_BACKBONE = "resnet34"
    settings.SEARCH_UNTRAINED = True
    settings.SEARCH_IMAGE_SIZE = 160
    settings.SEARCH_RESIZE = 180
    settings.SEARCH_BATCH_SIZE = 3
    embedder = backbone_embedder()
    assert (embedder.name, embedder.dim, embedder.untrained, embedder.pretrained) == (
        "resnet34",
        512,
        True,
        False,
    )
    assert embedder.preprocessing.size == 160 and embedder.preprocessing.resize == 180
    assert embedder.batch_size == 3
    assert "r180c160" in embedder.fingerprint


def test_reset_picks_up_changed_settings(settings):
    first = backbone_embedder()
    settings.SEARCH_UNTRAINED = True
    settings.SEARCH_BACKBONE = "resnet18"
    assert backbone_embedder() is first, "settings are read once; changing them needs a reset (or a restart)"
    reset_embedder()
    second = backbone_embedder()
    assert second is not first
    assert second.name == "resnet18" and second.untrained
