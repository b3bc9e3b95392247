"""A real Celery worker for the Redis + PostgreSQL pass (`make test-postgres`): started as its own
process group on the production settings module, pointed at the test's database, broker and files.

Plain helpers; the `real_broker` fixture is in tests/conftest.py.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from tests.conftest import PHOTOS_DIR

REPO = Path(__file__).resolve().parents[1]
WORKER_TIMEOUT = 120  # seconds for a worker to load the model and finish what a test asks


def worker_env(settings, redis_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The worker's environment: production settings on the test's database, broker and folders."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CELERY_")}
    env.update(
        DJANGO_SETTINGS_MODULE="shop_search.settings.base",
        SECRET_KEY="worker-test-secret",
        DATABASE_URL=_database_url(),
        CELERY_BROKER_URL=redis_url,
        SHOP_SEARCH_VAR_DIR=str(tmp_path / "var"),
        CELERY_BEAT_SCHEDULE_FILENAME=str(tmp_path / "celerybeat-schedule"),
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        SEARCH_INDEX_DIR=str(settings.SEARCH_INDEX_DIR),
        CATALOG_IMPORT_DIR=str(settings.CATALOG_IMPORT_DIR),
        # The same model as this test process (offline fallback): same fingerprint.
        SEARCH_BACKBONE=settings.SEARCH_BACKBONE,
        SEARCH_ALLOW_DOWNLOAD="0",
        TORCH_HOME=settings.SEARCH_TORCH_HOME,
        SEARCH_TORCH_THREADS="1",
        SEARCH_BATCH_SIZE=str(settings.SEARCH_BATCH_SIZE),
    )
    env.update(extra)
    return env


def start_worker(env: dict[str, str], log: Path, *, beat: bool = False) -> subprocess.Popen:
    """A solo-pool worker in a new session (its own process group), with Celery beat embedded if asked."""
    command = [sys.executable, "-m", "celery", "-A", "shop_search", "worker", "--pool=solo", "-c", "1"]
    command += ["--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    if beat:
        command.append("--beat")
    with open(log, "ab") as out:
        return subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def kill_worker(worker: subprocess.Popen) -> None:
    """SIGKILL the worker's whole process group: no clean-up code runs, as when a machine dies."""
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)


def stop_worker(worker: subprocess.Popen) -> None:
    if worker.poll() is not None:
        return
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=5)


def wait_for(check, worker: subprocess.Popen, log: Path, what: str, *, every: float = 0.5):
    """Polls ``check`` until it returns something truthy; fails with the worker's log on timeout."""
    deadline = time.monotonic() + WORKER_TIMEOUT
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        assert worker.poll() is None, f"worker exited early:\n{log.read_text()[-3000:]}"
        time.sleep(every)
    pytest.fail(f"timed out waiting for {what}; worker log:\n{log.read_text()[-3000:]}")


def _database_url() -> str:
    db = connection.settings_dict
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{host}:{port}/{db['NAME']}"


def photo_variants(count: int) -> list[tuple[str, bytes]]:
    """``count`` distinct real photos (work slow enough to kill a worker in the middle of): the photos
    of tests/photos as they are first, then turned and mirrored copies. (file name, bytes) pairs."""
    import io

    from PIL import Image, ImageOps

    originals = sorted(path for path in PHOTOS_DIR.iterdir() if path.suffix in {".jpg", ".png", ".webp"})
    photos = [(path.name, path.read_bytes()) for path in originals]
    turns = [(angle, mirror) for mirror in (False, True) for angle in (0, 90, 180, 270) if angle or mirror]
    for angle, mirror in turns:  # never the original picture again: every photo looks different
        for path in originals:
            picture = Image.open(path).convert("RGB").rotate(angle, expand=True)
            picture = ImageOps.mirror(picture) if mirror else picture
            buffer = io.BytesIO()
            picture.save(buffer, format="PNG")
            photos.append((f"{path.stem}-{angle}{'m' if mirror else ''}.png", buffer.getvalue()))
    assert len(photos) >= count, f"only {len(photos)} variants"
    return photos[:count]
