"""search.embedder reads which projection is in use at most every SEARCH_PROJECTION_CHECK_SECONDS per
process, not on each of the several current_embedder() calls of one request; the process that switches
follows at once, the others within that time; a projection trained on another backbone is warned about
once. The projection rows here are seeded random maps (plumbing, not quality)."""

import io
import logging

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

import search.embedder
from search.embedder import backbone_embedder, current_embedder
from search.models import AdaptedProjection
from search.services.projections import projection_stop
from tests.search.test_projected_embedder import random_projection

pytestmark = pytest.mark.django_db


def projection_queries(queries) -> int:
    return sum("search_adaptedprojection" in query["sql"] for query in queries)


def projection_row(*, trained_on: str, in_use: bool = True) -> AdaptedProjection:
    projection = random_projection(backbone_embedder().dim)
    return AdaptedProjection.objects.create(
        fingerprint=projection.fingerprint,
        backbone_fingerprint=trained_on,
        in_dim=projection.in_dim,
        out_dim=projection.out_dim,
        data_version=projection.data_version,
        weights=projection.dumps(),
        better=True,
        verdict="taken as better (plumbing only)",
        in_use=in_use,
    )


def search_request(client, photo_bytes):
    upload = io.BytesIO(photo_bytes("cup.webp"))
    upload.name = "q.webp"
    response = client.post("/api/v1/search/", {"image": upload, "k": "3"})
    assert response.status_code == 200, response.content
    return response


def test_searches_within_the_check_time_do_not_ask_which_projection_is_in_use(
    client, indexed_shop, photo_bytes, settings
):
    settings.SEARCH_PROJECTION_CHECK_SECONDS = 60  # longer than the test: no timing in the assertions
    search.embedder.forget_projection_in_use()  # as a process that has not read it yet (the shop's build did)
    with CaptureQueriesContext(connection) as first:
        search_request(client, photo_bytes)
    with CaptureQueriesContext(connection) as second:
        search_request(client, photo_bytes)
        search_request(client, photo_bytes)

    assert projection_queries(first.captured_queries) == 1
    assert projection_queries(second.captured_queries) == 0


def test_zero_check_seconds_asks_on_every_call(settings):
    settings.SEARCH_PROJECTION_CHECK_SECONDS = 0
    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            current_embedder()
    assert projection_queries(queries.captured_queries) == 3


def test_another_process_switch_is_followed_within_the_check_time(settings, monkeypatch):
    settings.SEARCH_PROJECTION_CHECK_SECONDS = 5
    clock = [1000.0]
    monkeypatch.setattr(search.embedder.time, "monotonic", lambda: clock[0])
    backbone = current_embedder()
    row = projection_row(trained_on=backbone.fingerprint, in_use=False)

    # Another process switches: this one is not told, it reads the row again after the check time.
    AdaptedProjection.objects.filter(pk=row.pk).update(in_use=True)
    clock[0] += 4.9
    assert current_embedder() is backbone
    clock[0] += 0.2
    assert current_embedder().fingerprint == f"{backbone.fingerprint}+p{row.fingerprint[:16]}"


def test_the_process_that_switches_follows_at_once(settings, django_capture_on_commit_callbacks):
    settings.SEARCH_PROJECTION_CHECK_SECONDS = 60
    backbone = backbone_embedder().fingerprint
    row = projection_row(trained_on=backbone)
    assert current_embedder().fingerprint == f"{backbone}+p{row.fingerprint[:16]}"

    with django_capture_on_commit_callbacks():  # the build it requests is sent, not run
        projection_stop()  # the service, as the admin's "Back to the backbone"
    assert current_embedder().fingerprint == backbone

    AdaptedProjection.objects.filter(pk=row.pk).update(in_use=True)  # another process switches back
    assert current_embedder().fingerprint == backbone
    assert current_embedder(recheck=True).fingerprint != backbone  # a build starting reads afresh


def test_a_projection_trained_on_another_backbone_is_warned_about_once(settings, caplog):
    settings.SEARCH_PROJECTION_CHECK_SECONDS = 0
    backbone = current_embedder()
    projection_row(trained_on="resnet34-other")

    with caplog.at_level(logging.WARNING, logger="search.embedder"):
        models = [current_embedder() for _ in range(4)]

    assert all(model is backbone for model in models)
    warnings = [record for record in caplog.records if "was trained on resnet34-other" in record.getMessage()]
    assert len(warnings) == 1
