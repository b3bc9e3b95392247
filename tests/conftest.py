"""Fixtures shared by every test. Media goes to a per-test temporary folder; photos are real
(tests/photos, see its ATTRIBUTION.md) or built in memory with PIL."""

import io
import os
from pathlib import Path

import pytest
from PIL import Image

PHOTOS_DIR = Path(__file__).parent / "photos"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SEARCH_INDEX_DIR = tmp_path / "index"
    settings.CATALOG_IMPORT_DIR = tmp_path / "imports"


@pytest.fixture
def photo_path():
    """Path of a real photo from tests/photos by file name."""

    def _get(name: str) -> Path:
        path = PHOTOS_DIR / name
        assert path.exists(), f"missing test photo {name}"
        return path

    return _get


@pytest.fixture
def photo_bytes(photo_path):
    def _get(name: str) -> bytes:
        return photo_path(name).read_bytes()

    return _get


def make_image_bytes(
    size: tuple[int, int] = (64, 48), color=(200, 30, 30), fmt: str = "JPEG", mode: str = "RGB", **save
) -> bytes:
    image = Image.new(mode, size, color)
    buf = io.BytesIO()
    image.save(buf, format=fmt, **save)
    return buf.getvalue()


@pytest.fixture
def image_bytes():
    """In-memory image of a given size, colour and format (plumbing tests, not search quality)."""
    return make_image_bytes


def require_service(env_name: str) -> str:
    """URL of a real server that .ci/run starts. Missing in CI is a failure, locally a skip."""
    url = os.environ.get(env_name, "")
    if not url:
        if IN_CI:
            pytest.fail(f"{env_name} is not set: .ci/run must start the server this test needs")
        pytest.skip(f"{env_name} not set (run .ci/run or export it to test against the real server)")
    return url
