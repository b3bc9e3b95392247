"""The "Adapted projections" admin page: the comparison and the self-test before and after, "Use this
projection" only for a better one and only for staff allowed to switch, refusals said as such, and
"Back to the backbone". The projections are plumbing (3 epochs on 5 products), never quality."""

import pytest
from django.urls import reverse

from search.embedder import current_embedder
from search.models import AdaptedProjection, IndexBuild
from tests.factories import UserFactory
from tests.search.projection_helpers import train

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
PAGE = reverse("admin:search_projections")
BACK = reverse("admin:search_projection_stop")


def use_url(row: AdaptedProjection) -> str:
    return reverse("admin:search_projection_use", args=[row.pk])


def staff(*permissions: str):
    return UserFactory(permissions=["search.view_adaptedprojection", *permissions], staff=True)


def messages_of(response) -> str:
    return " ".join(str(message) for message in response.context["messages"])


def test_staff_allowed_to_switch_see_both_comparisons_switch_and_go_back(
    client, better, django_capture_on_commit_callbacks
):
    client.force_login(
        staff("search.switch_adaptedprojection", "search.add_relevancerun", "search.delete_adaptedprojection")
    )
    backbone = current_embedder().fingerprint

    html = client.get(PAGE).content.decode()

    block = html.split(f'id="projection-{better.pk}"')[1].split('<div class="module"')[0]
    assert "Comparison: backbone" in block and "Comparison: projected" in block
    assert "Self-test: current model" in block and "Self-test: with the projection" in block
    assert f'id="projection-use-{better.pk}"' in block and "Taken as better by the test." in block
    assert 'id="projection-stop"' not in html  # nothing to go back from

    with django_capture_on_commit_callbacks():
        response = client.post(use_url(better), follow=True)

    assert "is in use. Build #" in messages_of(response) and "keep using the current index" in messages_of(
        response
    )
    better.refresh_from_db()
    assert better.in_use and better.switched_by is not None
    assert current_embedder().fingerprint != backbone
    assert IndexBuild.objects.filter(status="queued").exists()
    html = response.content.decode()
    assert 'id="projection-stop"' in html and f'id="projection-use-{better.pk}"' not in html
    delete = reverse("admin:search_adaptedprojection_delete", args=[better.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403  # the site's model: go back first

    with django_capture_on_commit_callbacks():
        response = client.post(BACK, follow=True)

    assert "Back to the backbone" in messages_of(response)
    assert current_embedder().fingerprint == backbone
    assert not AdaptedProjection.objects.filter(in_use=True).exists()


def test_a_projection_that_is_not_better_is_refused_with_a_message(
    client, relevance_shop, var_dir, fresh_embedder
):
    row = train(better=False)
    client.force_login(staff("search.switch_adaptedprojection"))

    html = client.get(PAGE).content.decode()
    assert f'id="projection-use-{row.pk}"' not in html
    assert f"Projection #{row.pk} is not better on the held-out products: the current model is kept." in html

    response = client.post(use_url(row), follow=True)

    assert response.status_code == 200
    assert "is not better on the held-out products: the current model is kept." in messages_of(response)
    row.refresh_from_db()
    assert not row.in_use and not IndexBuild.objects.filter(status="queued").exists()


def test_only_staff_with_the_switch_permission_can_switch(client, better):
    backbone = current_embedder().fingerprint
    viewer = staff()
    client.force_login(viewer)

    html = client.get(PAGE).content.decode()
    assert f"Projection #{better.pk}" in html and f'id="projection-use-{better.pk}"' not in html
    assert client.post(use_url(better)).status_code == 403
    assert client.post(BACK).status_code == 403

    client.force_login(UserFactory(permissions=["search.switch_adaptedprojection"]))  # not staff
    assert client.post(use_url(better)).status_code == 302  # to the admin's login page
    client.force_login(staff("search.switch_adaptedprojection"))
    assert client.get(use_url(better)).status_code == 405

    better.refresh_from_db()
    assert not better.in_use and current_embedder().fingerprint == backbone
