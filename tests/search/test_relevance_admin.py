"""The relevance self-test page in the admin: figures, hardest products side by side, trend, comparison,
starting and cancelling a run, progress; staff only."""

import re

import pytest
from django.urls import reverse

from catalog.models import ProductImage
from catalog.thumbnails import thumbnail_url
from search import services
from search.models import RelevanceRun
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
REPORT = reverse("admin:search_relevance")
START = reverse("admin:search_relevance_start")


def run_now(**options) -> RelevanceRun:
    run = services.relevance_run_request(enqueue=False, **options)
    return services.relevance_run(run_id=run.pk)


@pytest.mark.slow
def test_the_report_shows_figures_method_hardest_side_by_side_trend_and_comparison(
    admin_client, relevance_shop
):
    first = run_now(photos=50, kinds=["reshot"])
    run = run_now(photos=50, kinds=["reshot"])

    html = admin_client.get(REPORT).content.decode()

    assert f"Self-test #{run.pk}: succeeded" in html
    figures = html.split('id="relevance-figures"')[1].split("</table>")[0]
    assert re.search(r"<td>all variants</td>\s*<td><meter[^>]*value=\"0\.857142", figures)
    assert "0.857" in figures and "1.000" in figures and "0.333" in figures
    method = html.split('id="relevance-method"')[1].split("</ul>")[0]
    assert "Re-shot: a crop keeping 70-95 % of each side" in method and "8 real photos from" in method
    assert "upper bound" in method
    (hard,) = run.hardest
    row = html.split('id="relevance-hardest"')[1].split("</table>")[0]
    images = re.findall(r'<img src="([^"]+)"', row)
    assert images[0].startswith("data:image/jpeg;base64,")  # the shopper-like photo that was searched
    # The product's own photo next to the photo of the product that came first instead (its twin).
    own, taken = (ProductImage.objects.get(pk=hard[key]) for key in ("worst_image_id", "confused_image_id"))
    assert (own.product.sku, taken.product.sku) == (hard["sku"], hard["confused_sku"])
    assert images[1:] == [thumbnail_url(own, 160), thumbnail_url(taken, 160)]
    assert hard["name"] in row and hard["confused_name"] in row and "0 / 1 / 1" in row
    compare = html.split('id="relevance-compare"')[1].split("</table>")[0]
    assert f"#{first.pk}" in compare and "(same model)" in compare
    history = html.split('id="relevance-history"')[1].split("</table>")[0]
    assert f"?run={first.pk}" in history and f"?run={run.pk}" in history
    assert (
        f"Self-test #{first.pk}: succeeded" in admin_client.get(f"{REPORT}?run={first.pk}").content.decode()
    )


def test_before_any_run_the_page_says_so_and_offers_the_form(admin_client, settings):
    html = admin_client.get(REPORT).content.decode()

    assert 'id="relevance-none"' in html and 'id="relevance-start"' in html
    assert f'name="photos" value="{settings.SEARCH_RELEVANCE_PHOTOS}"' in html


def test_non_staff_and_anonymous_users_are_sent_to_the_login(client):
    assert client.get(REPORT).status_code == 302
    client.force_login(UserFactory(permissions=["search.view_relevancerun", "search.add_relevancerun"]))
    for url in (REPORT, reverse("admin:search_relevance_status", args=[1])):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    assert client.post(START, {"photos": 5, "seed": 1, "kinds": ["reshot"]}).status_code == 302
    assert not RelevanceRun.objects.exists()


def test_staff_need_the_permissions(client):
    client.force_login(UserFactory(staff=True))
    assert client.get(REPORT).status_code == 403

    client.force_login(UserFactory(staff=True, permissions=["search.view_relevancerun"]))
    html = client.get(REPORT).content.decode()
    assert 'id="relevance-start"' not in html  # may read, may not start
    assert client.post(START, {"photos": 5, "seed": 1, "kinds": ["reshot"]}).status_code == 403
    assert not RelevanceRun.objects.exists()


def test_starting_queues_a_run_sends_it_to_a_worker_and_shows_its_progress(
    admin_client, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr("search.tasks.relevance_run.delay", lambda run_id: sent.append(run_id))
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(START, {"photos": 30, "seed": 7, "kinds": ["scene"]})

    run = RelevanceRun.objects.get()
    assert (run.status, run.photos_requested, run.seed, run.kinds) == ("queued", 30, 7, ["scene"])
    assert sent == [run.pk]
    assert response["Location"] == f"{REPORT}?run={run.pk}"
    html = admin_client.get(response["Location"]).content.decode()
    status_url = reverse("admin:search_relevance_status", args=[run.pk])
    assert (
        f'data-poll-url="{status_url}"' in html and "poll.js" in html and 'id="relevance-start"' not in html
    )
    assert admin_client.get(status_url).json() == {
        "id": run.pk, "status": "queued", "finished": False, "done": 0, "total": 0, "percent": 0,
    }  # fmt: skip

    # A second start while this one waits is refused with the reason; nothing more is queued.
    page = admin_client.post(
        START, {"photos": 5, "seed": 1, "kinds": ["reshot"]}, follow=True
    ).content.decode()
    assert f"Self-test #{run.pk} is queued" in page and RelevanceRun.objects.count() == 1


def test_bad_start_options_show_the_form_again_with_the_reason(admin_client):
    response = admin_client.post(START, {"photos": 0, "seed": 1, "kinds": ["drawing"]})

    assert response.status_code == 400
    html = response.content.decode()
    assert "Ensure this value is greater than or equal to 1." in html
    assert "Select a valid choice. drawing is not one of the available choices." in html
    assert not RelevanceRun.objects.exists()
    assert admin_client.get(START).status_code == 405


def test_cancel_stops_a_queued_run(admin_client):
    run = services.relevance_run_request(enqueue=False, photos=5)

    page = admin_client.post(reverse("admin:search_relevance_cancel", args=[run.pk]), follow=True)

    run.refresh_from_db()
    assert run.status == "cancelled" and f"Self-test #{run.pk}: cancelled." in page.content.decode()
    assert (
        admin_client.get(reverse("admin:search_relevance_status", args=[run.pk])).json()["finished"] is True
    )


def test_the_list_leads_to_the_report_and_the_dashboard_links_to_it(admin_client):
    assert admin_client.get(reverse("admin:search_relevancerun_changelist"))["Location"] == REPORT
    assert f'href="{REPORT}"' in admin_client.get(reverse("admin:search_dashboard")).content.decode()
    assert f'href="{REPORT}"' in admin_client.get(reverse("admin:index")).content.decode()
