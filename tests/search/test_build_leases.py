"""Crash-safe builds: leases, the reaper, takeover by a redelivered task, "Rebuild now" after a crash.

Time is faked by writing heartbeats in the past or passing ``now=``; the real SIGKILL test is in
test_worker_crash.py (Redis + PostgreSQL pass).
"""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

import search.index
from search.index import current_index
from search.models import IndexBuild
from search.services import (
    index_build_request,
    index_builds_reap,
    index_status,
)
from search.tasks import index_build_run, reap
from shop_search.leases import LOST_LEASE, Lease
from tests.search.shop_helpers import build_now, search_photo

LEASE = 3600  # as in the test settings: long, so no heartbeat thread fires in a non-transactional test


@pytest.fixture(autouse=True)
def _lease(settings):
    settings.SEARCH_LEASE_SECONDS = LEASE


def running_build(*, beat_seconds_ago: float, owner: str = "gone-host:4242:abc123") -> IndexBuild:
    beat = timezone.now() - timedelta(seconds=beat_seconds_ago)
    return IndexBuild.objects.create(
        status=IndexBuild.Status.RUNNING, started_at=beat, heartbeat_at=beat, lease_owner=owner
    )


def build_task_ids(callbacks) -> list[int]:
    """Build ids of the index_build_run tasks enqueued on commit."""
    ids = []
    for callback in callbacks:
        task = callback.func.__self__  # delay_on_commit registers a partial of task.delay
        assert task.name == "search.index_build_run"
        ids.extend(callback.args)
    return ids


@pytest.mark.django_db
def test_the_reaper_fails_a_lost_build_and_queues_one_to_take_its_place(django_capture_on_commit_callbacks):
    lost = running_build(beat_seconds_ago=LEASE + 1)

    with django_capture_on_commit_callbacks() as callbacks:
        reaped = index_builds_reap()

    lost.refresh_from_db()
    assert lost.status == IndexBuild.Status.FAILED and lost.finished_at is not None
    assert lost.error.startswith(f"{LOST_LEASE}: no heartbeat since ")
    replacement = IndexBuild.objects.get(status=IndexBuild.Status.QUEUED)
    assert f"Build #{replacement.pk} was queued to take its place." in lost.error
    assert reaped.expired == [lost.pk] and build_task_ids(callbacks) == [replacement.pk]
    assert replacement.enqueued_at is not None


@pytest.mark.django_db
def test_a_lease_is_lost_only_once_its_time_has_passed(django_capture_on_commit_callbacks):
    build = running_build(beat_seconds_ago=0)
    beat = build.heartbeat_at

    with django_capture_on_commit_callbacks() as callbacks:
        assert index_builds_reap(now=beat + timedelta(seconds=LEASE - 1)).expired == []
    build.refresh_from_db()
    assert build.status == IndexBuild.Status.RUNNING and callbacks == []

    assert index_builds_reap(now=beat + timedelta(seconds=LEASE + 1)).expired == [build.pk]


@pytest.mark.django_db
def test_a_lost_build_lets_the_queued_follow_up_run_instead_of_adding_one(django_capture_on_commit_callbacks):
    lost = running_build(beat_seconds_ago=LEASE * 10)
    follow_up = IndexBuild.objects.create()  # requested while it ran: waits for it to end, forever

    with django_capture_on_commit_callbacks() as callbacks:
        reap()  # the beat task

    lost.refresh_from_db()
    assert lost.status == IndexBuild.Status.FAILED
    assert f"Build #{follow_up.pk}, queued meanwhile, runs next." in lost.error
    assert IndexBuild.objects.count() == 2 and build_task_ids(callbacks) == [follow_up.pk]


@pytest.mark.django_db
def test_a_build_lost_right_after_a_lost_build_is_not_retried_again(django_capture_on_commit_callbacks):
    # e.g. the build is killed for memory each time: one automatic retry, then the operator decides.
    first = running_build(beat_seconds_ago=LEASE * 3)
    index_builds_reap()
    retry = IndexBuild.objects.get(status=IndexBuild.Status.QUEUED)
    beat = timezone.now() - timedelta(seconds=LEASE + 5)
    IndexBuild.objects.filter(pk=retry.pk).update(status="running", started_at=beat, heartbeat_at=beat)

    with django_capture_on_commit_callbacks() as callbacks:
        assert index_builds_reap().expired == [retry.pk]

    retry.refresh_from_db()
    assert retry.status == IndexBuild.Status.FAILED and "Not retried automatically" in retry.error
    assert not IndexBuild.objects.filter(status=IndexBuild.Status.QUEUED).exists() and callbacks == []
    assert IndexBuild.objects.get(pk=first.pk).status == IndexBuild.Status.FAILED


@pytest.mark.django_db
def test_a_queued_build_with_no_task_behind_it_is_enqueued_again(django_capture_on_commit_callbacks):
    queued = IndexBuild.objects.create()
    IndexBuild.objects.filter(pk=queued.pk).update(enqueued_at=timezone.now() - timedelta(seconds=LEASE + 1))

    with django_capture_on_commit_callbacks() as callbacks:
        assert index_builds_reap().enqueued == queued.pk
    assert build_task_ids(callbacks) == [queued.pk]

    with django_capture_on_commit_callbacks() as callbacks:
        assert index_builds_reap().enqueued is None  # just sent: not again at the next reap
    assert callbacks == []


@pytest.mark.django_db
def test_a_queued_build_waiting_for_a_live_build_is_not_enqueued(django_capture_on_commit_callbacks):
    running_build(beat_seconds_ago=1)
    queued = IndexBuild.objects.create()
    IndexBuild.objects.filter(pk=queued.pk).update(requested_at=timezone.now() - timedelta(hours=1))

    with django_capture_on_commit_callbacks() as callbacks:
        reaped = index_builds_reap()

    assert reaped.expired == [] and reaped.enqueued is None and callbacks == []


@pytest.mark.django_db
def test_rebuild_now_after_a_crash_runs_the_stuck_follow_up(
    shop, photo_bytes, settings, django_capture_on_commit_callbacks
):
    lost = running_build(beat_seconds_ago=LEASE + 30)
    follow_up = IndexBuild.objects.create()  # never enqueued: the lost build was to do it

    with django_capture_on_commit_callbacks(execute=True):
        requested = index_build_request()  # the admin's "Rebuild now"

    assert requested.pk == follow_up.pk
    follow_up.refresh_from_db()
    assert follow_up.status == IndexBuild.Status.SUCCEEDED, follow_up.error
    assert IndexBuild.objects.get(pk=lost.pk).error.startswith(LOST_LEASE)
    assert current_index(settings.SEARCH_INDEX_DIR).version == follow_up.version
    assert search_photo(photo_bytes("pan.webp"), k=1)[0].product.sku == "pan"


@pytest.mark.django_db
def test_a_redelivered_task_takes_over_once_the_lease_ran_out(shop, django_capture_on_commit_callbacks):
    lost = running_build(beat_seconds_ago=10)

    assert index_build_run.delay(lost.pk).get() == "running"  # lease still fresh: leaves it alone
    assert IndexBuild.objects.count() == 1

    IndexBuild.objects.filter(pk=lost.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=LEASE + 1))
    with django_capture_on_commit_callbacks(execute=True):
        assert index_build_run.delay(lost.pk).get() == "failed"

    replacement = IndexBuild.objects.exclude(pk=lost.pk).get()
    assert replacement.status == IndexBuild.Status.SUCCEEDED and replacement.vectors == 6
    assert IndexBuild.objects.get(pk=lost.pk).error.startswith(LOST_LEASE)


@pytest.mark.django_db
def test_status_shows_a_lost_build_before_the_reaper_marks_it():
    running_build(beat_seconds_ago=LEASE + 1)

    status = index_status()

    assert status.running_build is None and status.state != "building"
    assert status.last_error.startswith(LOST_LEASE)


@pytest.mark.django_db
def test_status_shows_a_live_build_as_running():
    build = running_build(beat_seconds_ago=5)
    status = index_status()
    assert status.running_build.id == build.pk and status.state == "building" and status.last_error == ""


@pytest.mark.django_db
def test_a_finished_build_records_who_ran_it(shop):
    build = build_now()
    assert build.lease_owner.count(":") == 2 and build.heartbeat_at is not None


# --- the heartbeat thread (needs committed rows: its own database connection) ----------------


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_thread_renews_the_lease_while_work_runs():
    build = running_build(beat_seconds_ago=100, owner="me")
    with Lease(IndexBuild, build.pk, owner="me", seconds=1) as lease:
        time.sleep(0.8)  # renewals every 0.25 s
    build.refresh_from_db()
    assert timezone.now() - build.heartbeat_at < timedelta(seconds=1) and not lease.lost


@pytest.mark.django_db(transaction=True)
def test_a_build_taken_over_while_it_runs_neither_publishes_nor_records_an_outcome(
    shop, settings, monkeypatch
):
    settings.SEARCH_LEASE_SECONDS = 1  # renewals every 0.25 s
    real_build = search.index.index_build

    def build_while_presumed_dead(*args, **kwargs):
        # The reaper decided this worker was lost (e.g. cut off from the database for a lease).
        IndexBuild.objects.filter(status="running").update(status="failed", error=f"{LOST_LEASE}: test")
        time.sleep(0.8)  # the next renewal finds out
        return real_build(*args, **kwargs)

    monkeypatch.setattr(search.index, "index_build", build_while_presumed_dead)
    serving = current_index(settings.SEARCH_INDEX_DIR)  # adding the shop's photos built one already
    on_disk = sorted(path.name for path in (settings.SEARCH_INDEX_DIR / "builds").iterdir())

    build = build_now()

    assert build.status == IndexBuild.Status.FAILED and build.error == f"{LOST_LEASE}: test"
    assert current_index(settings.SEARCH_INDEX_DIR).version == serving.version  # nothing published
    assert sorted(path.name for path in (settings.SEARCH_INDEX_DIR / "builds").iterdir()) == on_disk
