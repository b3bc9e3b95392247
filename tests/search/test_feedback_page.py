"""Shopper feedback on the page without JavaScript: every result card (and every hit in a row of other
things) carries a small form with two real buttons; posting it records the verdict and says thanks."""

import hashlib
import re
from html import unescape

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse

from search.models import SearchFeedback
from search.services import SearchQuery, query_id_sign
from search.views import Card, ThingRow
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

FORM = re.compile(r'<form class="feedback[^"]*".*?</form>', re.S)


def hidden(form: str, name: str) -> str:
    match = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)">', form)
    assert match, f"no {name} in {form}"
    return unescape(match.group(1))


def button_names(form: str) -> list[str]:
    """Each button's accessible name (its aria-label), checked to begin with its visible words."""
    buttons = re.findall(r'<button[^>]*aria-label="([^"]*)"[^>]*>([^<]*)</button>', form)
    assert buttons and all(unescape(label).startswith(unescape(text)) for label, text in buttons)
    return [unescape(label) for label, _text in buttons]


def test_every_result_card_has_feedback_buttons_for_its_search(client, indexed_shop, photo_path):
    with photo_path("cup.webp").open("rb") as photo:
        html = client.post(reverse("shop-by-photo"), {"image": photo}).content.decode()

    assert "{#" not in html and "#}" not in html  # template comments never reach the shopper
    grid_query = re.search(r'<ul id="result-grid" class="grid" data-query-id="([^"]+)">', html).group(1)
    # The grid, then the weak hits folded under "less alike": every hit has its feedback form.
    grid = "".join(html.split(f'id="{part}"')[1].split("</ul>")[0] for part in ("result-grid", "more-grid"))
    forms = FORM.findall(grid)
    assert len(forms) == grid.count('<li class="card">') == 6
    first = forms[0]
    assert [hidden(form, "rank") for form in forms] == ["1", "2", "3", "4", "5", "6"]
    assert hidden(first, "query_id") == unescape(grid_query)
    assert hidden(first, "rank") == "1" and float(hidden(first, "score")) == pytest.approx(1.0, abs=1e-3)
    assert button_names(first) == ["This one: Cup", "Not what I'm looking for: Cup"]
    assert first.count('aria-pressed="false"') == 2 and first.count('type="submit"') == 2

    # Sending the form as a browser without JavaScript would: the verdict is recorded, thanks said.
    fields = {name: hidden(first, name) for name in ("query_id", "product", "rank", "score")}
    response = client.post(reverse("search-feedback"), {**fields, "verdict": "this_one"})

    assert response.status_code == 200
    page = response.content.decode()
    assert "Thanks! You told us “Cup” is what you were looking for." in unescape(page)
    row = SearchFeedback.objects.get()
    assert row.product.name == "Cup" and row.verdict == "this_one" and row.rank == 1


def test_the_hits_of_other_things_have_their_own_query_id(client, indexed_shop, photo_path):
    """A scene with several things (a cup on a plain backdrop is one thing: no rows)."""
    with photo_path("box_in_scene.png").open("rb") as photo:
        html = client.post(reverse("shop-by-photo"), {"image": photo}).content.decode()

    grid_query = re.search(r'<ul id="result-grid" class="grid" data-query-id="([^"]+)">', html).group(1)
    rows = html.split('id="other-objects-list"')[1].split("</ol>")[0]
    forms = FORM.findall(rows)
    assert len(forms) == rows.count('<li class="card">') > 0  # a card per hit, each with its form
    row_queries = {hidden(form, "query_id") for form in forms}
    assert row_queries and unescape(grid_query) not in row_queries  # their box was searched


def test_product_page_cards_have_no_feedback_buttons(client, indexed_shop):
    product = indexed_shop[0]["cup"]
    html = client.get(product.get_absolute_url()).content.decode()
    assert 'class="card' in html and not FORM.search(html)  # no search, so nothing to give feedback on


def test_rows_of_other_things_carry_their_own_query_id():
    product = ProductFactory(name="Blue mug")
    query_id = query_id_sign(
        SearchQuery(hashlib.sha256(b"x").hexdigest(), None, "fp"), crop=(0.1, 0.2, 0.3, 0.4)
    )
    card = Card(product=product, thumbnail="", similarity=80, match="close", rank=3, score=0.8)
    row = ThingRow(number=2, place="top left", cards=[card], search_url="", query_id=query_id)
    request = RequestFactory().get("/")

    html = render_to_string("search/_thing_row.html", {"row": row}, request=request)

    form = FORM.search(html).group(0)
    assert hidden(form, "query_id") == query_id and hidden(form, "rank") == "3"
    assert button_names(form)[0] == "This one: Blue mug"


def test_a_forged_query_id_gets_a_page_saying_so(client):
    product = ProductFactory()
    fields = {"query_id": "1~abc~~fp~:1x:forged", "product": product.pk, "rank": 1, "score": 0.5}
    response = client.post(reverse("search-feedback"), {**fields, "verdict": "not_this"})
    assert response.status_code == 400
    assert "unknown to the shop" in response.content.decode()
    assert not SearchFeedback.objects.exists()


def test_unreadable_feedback_and_get_are_refused(client):
    response = client.post(reverse("search-feedback"), {"verdict": "maybe"})
    assert response.status_code == 400 and "could not be read" in response.content.decode()
    assert client.get(reverse("search-feedback")).status_code == 405


@pytest.mark.parametrize(
    ("back", "shown"),
    [
        ("http://testserver/?url=https%3A%2F%2Fexample.com%2Fa.jpg", True),
        ("https://elsewhere.example/", False),
    ],
)
def test_the_thanks_page_links_back_only_to_this_site(client, back, shown):
    product = ProductFactory()
    query_id = query_id_sign(SearchQuery(hashlib.sha256(b"y").hexdigest(), None, "fp"))
    fields = {"query_id": query_id, "product": product.pk, "rank": 1, "score": 0.5, "verdict": "this_one"}
    html = client.post(reverse("search-feedback"), {**fields, "back": back}).content.decode()
    assert ("Back to your results" in html) is shown
    assert ("elsewhere.example" in html) is False
