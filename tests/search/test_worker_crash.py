"""A worker SIGKILLed in the middle of an index build: the system heals without an operator.

Runs in the Redis + PostgreSQL pass (`make test-postgres`). The lease is a few seconds and Celery beat
(embedded in the second worker, as in the demo) runs the reaper every second, so healing takes seconds.
"""

import pytest

from search.models import IndexBuild
from search.services import index_build_request
from shop_search.leases import LOST_LEASE
from tests.real_worker import (
    kill_worker,
    photo_variants,
    start_worker,
    stop_worker,
    wait_for,
    worker_env,
)
from tests.search.shop_helpers import add_product, search_photo

LEASE_SECONDS = 3
PHOTOS = 96  # embedded one at a time by the build: seconds of work to be killed in


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_build_heals_without_an_operator(settings, photo_bytes, tmp_path, real_broker):
    import redis

    settings.SEARCH_LEASE_SECONDS = LEASE_SECONDS  # this process judges leases too ("Rebuild now", status)
    env = worker_env(
        settings,
        real_broker,
        tmp_path,
        SEARCH_LEASE_SECONDS=str(LEASE_SECONDS),
        REAP_EVERY_SECONDS="1",
        SEARCH_BATCH_SIZE="1",
    )
    products = {
        name: add_product(f"P-{number}", data) for number, (name, data) in enumerate(photo_variants(PHOTOS))
    }
    # Their embed_image messages are dropped: the build embeds all 96 photos itself.
    redis.Redis.from_url(real_broker).flushdb()
    build = index_build_request()

    first_log, second_log = tmp_path / "worker-1.log", tmp_path / "worker-2.log"
    worker = start_worker(env, first_log)
    try:
        mid_build = IndexBuild.objects.filter(pk=build.pk, status="running", done__gte=2)
        wait_for(mid_build.exists, worker, first_log, "the build to embed its first photos", every=0.05)
    finally:
        kill_worker(worker)
    build.refresh_from_db()
    assert build.status == "running" and build.done < build.total == PHOTOS, "killed mid-build"

    worker = start_worker(env, second_log, beat=True)  # as `run_demo` starts it
    try:
        wait_for(
            lambda: IndexBuild.objects.filter(pk=build.pk, status="failed").exists(),
            worker,
            second_log,
            "the lost build to be marked failed",
        )
        healed = IndexBuild.objects.filter(pk__gt=build.pk, status="succeeded")
        wait_for(healed.exists, worker, second_log, "a later build to succeed")
        wait_for(
            lambda: not IndexBuild.objects.filter(status__in=["queued", "running"]).exists(),
            worker,
            second_log,
            "the builds to settle",
        )
    finally:
        stop_worker(worker)

    build.refresh_from_db()
    assert build.error.startswith(f"{LOST_LEASE}: no heartbeat since "), build.error
    assert healed.get().vectors == PHOTOS
    assert "Sending due task reap-index-builds (search.reap)" in second_log.read_text()  # beat runs
    for name in ("pan.webp", "cup.webp", "chair.webp"):
        hit = search_photo(photo_bytes(name), k=1)[0]
        assert hit.product == products[name] and hit.score == pytest.approx(1.0, abs=1e-3)
