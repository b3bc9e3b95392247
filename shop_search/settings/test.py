"""Test settings: only overrides of base. Media and the index go to a per-run temporary folder."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key")

from .base import *  # noqa: E402,F403

_TMP = Path(tempfile.mkdtemp(prefix="shop_search_test_"))
MEDIA_ROOT = _TMP / "media"
SEARCH_INDEX_DIR = _TMP / "index"
CATALOG_IMPORT_DIR = _TMP / "imports"
SEARCH_MILVUS_URI = str(_TMP / "milvus.db")  # Milvus Lite, opened by the test process only
# Hashed static names need `collectstatic` first; tests render pages without it (tests/test_serving.py
# runs collectstatic and the real storage under gunicorn). WhiteNoise wants its folder to exist.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
STATIC_ROOT = _TMP / "static"
STATIC_ROOT.mkdir()
ALLOWED_HOSTS = ["*"]
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Tasks run inline unless a test starts a real worker against a real broker.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "memory://")
CELERY_BROKER_TRANSPORT_OPTIONS = {}

# No ImageNet ResNet weights can be had here (no download, empty torch cache), so the tests run the
# real offline path: the ImageNet-trained EfficientNet-Lite0 fallback, labelled as a fallback.
# Tests of weight resolution and of the explicit untrained mode override these per test.
SEARCH_BACKBONE = "resnet50"
SEARCH_UNTRAINED = False
SEARCH_ALLOW_DOWNLOAD = False
SEARCH_TORCH_HOME = str(_TMP / "torch-home")
SEARCH_TORCH_THREADS = 2
SEARCH_BATCH_SIZE = 8
# A lease's heartbeat thread has its own database connection: inside a test's transaction it cannot see
# the row it renews and would take the work for lost. Tests of leases set short ones on committed rows.
SEARCH_LEASE_SECONDS = 3600
CATALOG_IMPORT_LEASE_SECONDS = 3600
REST_FRAMEWORK = {  # noqa: F405
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"search_anon": "1000/minute", "search_feedback": "1000/minute"},
}
