"""POST /api/v1/search/feedback/: a shopper's "this one" / "not what I'm looking for" on one hit.

The search answer's query ids (signed), recording and changing a verdict, every refusal as a 4xx JSON
error, forged and expired query ids, the throttle, and the query photo kept only while retention is on.
Most tests sign a query id directly (no model run); the first one takes it from a real search.
"""

import hashlib
import io
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.core.signing import TimestampSigner
from PIL import Image

from search.models import SearchFeedback
from search.query_photos import query_photo_keep
from search.services import SearchQuery, query_id_sign
from search.services.feedback import QUERY_ID_SALT
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

SEARCH = "/api/v1/search/"
FEEDBACK = "/api/v1/search/feedback/"
FINGERPRINT = "efficientnet_lite0-0123456789ab-p1-r256c224"


def upload(name: str, data: bytes):
    file = io.BytesIO(data)
    file.name = name
    return file


def signed_query(data: bytes = b"a query photo", *, crop=None, kept: str = "") -> str:
    return query_id_sign(SearchQuery(hashlib.sha256(data).hexdigest(), crop, FINGERPRINT, kept))


def post(client, **fields):
    return client.post(FEEDBACK, fields, content_type="application/json")


@pytest.fixture
def product():
    return ProductFactory(sku="MUG-1", name="Blue mug")


def feedback_fields(hit, **changes) -> dict:
    return {
        "query_id": signed_query(),
        "product": hit.pk,
        "verdict": "this_one",
        "rank": 2,
        "score": 0.81,
    } | changes


def test_search_answer_carries_query_ids_that_feedback_accepts(client, indexed_shop, photo_bytes):
    photo = photo_bytes("cup.webp")
    answer = client.post(SEARCH, {"image": upload("q.webp", photo), "k": "3"}).json()
    assert answer["query_id"] and all(found["query_id"] for found in answer["objects"])
    top = answer["results"][0]

    response = post(
        client,
        query_id=answer["query_id"],
        product=top["product"]["id"],
        verdict="this_one",
        rank=1,
        score=top["score"],
    )

    assert response.status_code == 201, response.content
    assert response.json() == {
        "verdict": "this_one",
        "product": top["product"]["id"],
        "created": True,
        "photo_kept": False,  # retention is off by default
    }
    row = SearchFeedback.objects.get()
    assert row.photo_sha256 == hashlib.sha256(photo).hexdigest()
    assert row.fingerprint == answer["model"]["fingerprint"]
    assert row.crop is None and row.rank == 1 and row.score == pytest.approx(top["score"])
    assert row.review == SearchFeedback.Review.PENDING and not row.photo


def test_feedback_on_a_things_hits_records_the_things_box(client, product):
    box = (0.5, 0.1, 0.4, 0.6)
    response = post(client, **feedback_fields(product, query_id=signed_query(crop=box)))
    assert response.status_code == 201
    assert SearchFeedback.objects.get().crop == list(box)


def test_a_second_click_changes_the_verdict_and_sends_it_back_to_review(client, product):
    assert post(client, **feedback_fields(product)).status_code == 201
    SearchFeedback.objects.update(review=SearchFeedback.Review.CONFIRMED)

    response = post(client, **feedback_fields(product, verdict="not_this"))

    assert response.status_code == 200 and response.json()["created"] is False
    row = SearchFeedback.objects.get()  # still one row: replaying a query id cannot add more
    assert row.verdict == "not_this" and row.review == SearchFeedback.Review.PENDING


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"query_id": None}, "query_id"),
        ({"verdict": "maybe"}, "verdict"),
        ({"verdict": None}, "verdict"),
        ({"product": "mug"}, "product"),
        ({"rank": 0}, "rank"),
        ({"rank": 101}, "rank"),
        ({"score": 1.5}, "score"),
    ],
)
def test_bad_fields_are_a_400_naming_the_field(client, product, changes, field):
    fields = {key: value for key, value in feedback_fields(product, **changes).items() if value is not None}
    response = post(client, **fields)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and field in response.json()["errors"]
    assert not SearchFeedback.objects.exists()


def test_unknown_product_is_a_400(client, product):
    response = post(client, **feedback_fields(product, product=product.pk + 1000))
    assert response.status_code == 400
    assert response.json() == {
        "detail": f"There is no product {product.pk + 1000}.",
        "code": "unknown_product",
    }


def test_a_body_that_is_not_an_object_or_not_json_is_refused(client):
    assert client.post(FEEDBACK, [1, 2], content_type="application/json").status_code == 400
    response = client.post(FEEDBACK, "verdict=this_one", content_type="text/plain")
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"


def test_a_form_post_is_accepted_too(client, product):
    body = urlencode(feedback_fields(product))
    response = client.post(FEEDBACK, body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 201


def tampered(query_id: str) -> str:
    """The same query id with its photo digest changed: the signature no longer matches."""
    version, digest, rest = query_id.split("~", 2)
    return "~".join((version, ("B" if digest[0] != "B" else "C") + digest[1:], rest))


def resigned(**signer) -> str:
    """A well-formed query id, signed by someone else (another key, or for another purpose)."""
    payload = signed_query().rsplit(":", 2)[0]
    return TimestampSigner(**{"salt": QUERY_ID_SALT} | signer).sign(payload)


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda: signed_query().rsplit(":", 1)[0] + ":" + "A" * 43, id="made-up-signature"),
        pytest.param(lambda: tampered(signed_query()), id="tampered"),
        pytest.param(lambda: resigned(key="another key"), id="other-key"),
        pytest.param(lambda: resigned(salt="another.salt"), id="other-salt"),
        pytest.param(lambda: TimestampSigner(salt=QUERY_ID_SALT).sign("2~x~~fp~~"), id="other-format"),
    ],
)
def test_forged_query_ids_are_refused(client, product, forge):
    response = post(client, **feedback_fields(product, query_id=forge()))
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_query"
    assert "search again" in response.json()["detail"]
    assert not SearchFeedback.objects.exists()


def test_a_query_id_over_a_day_old_is_refused(client, product, monkeypatch):
    import django.core.signing

    query_id = signed_query()
    later = django.core.signing.time.time() + 25 * 3600
    monkeypatch.setattr(django.core.signing.time, "time", lambda: later)
    response = post(client, **feedback_fields(product, query_id=query_id))
    assert response.status_code == 400 and response.json()["code"] == "query_expired"


def test_feedback_is_throttled_with_retry_after(client, product, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"search_anon": "1000/minute", "search_feedback": "2/minute"},
    }
    cache.clear()
    try:
        codes = [post(client, **feedback_fields(product)).status_code for _ in range(3)]
        assert codes == [201, 200, 429]
        response = post(client, **feedback_fields(product))
        assert response.json()["code"] == "throttled"
        assert 0 < int(response["Retry-After"]) <= 60
        # The page's no-JavaScript form spends the same budget.
        assert client.post("/feedback/", feedback_fields(product)).status_code == 429
    finally:
        cache.clear()


def kept_query(settings, data: bytes) -> str:
    """A query id for a photo retention kept at search time (as photo_search keeps it)."""
    settings.SEARCH_KEEP_QUERY_PHOTOS_DAYS = 7
    sha = hashlib.sha256(data).hexdigest()
    kept = query_photo_keep(Image.new("RGB", (40, 30), "orange"), photo_sha256=sha)
    assert kept and default_storage.exists(kept)
    return signed_query(data, kept=kept)


def test_the_photo_is_kept_with_feedback_only_while_retention_allows(client, product, settings):
    settings.SEARCH_KEEP_QUERY_PHOTOS_DAYS = 0
    assert post(client, **feedback_fields(product)).json()["photo_kept"] is False

    query_id = kept_query(settings, b"kept photo")
    response = post(client, **feedback_fields(product, query_id=query_id))

    assert response.status_code == 201 and response.json()["photo_kept"] is True
    row = SearchFeedback.objects.get(photo_sha256=hashlib.sha256(b"kept photo").hexdigest())
    assert row.photo.name.startswith("feedback/")
    with default_storage.open(row.photo.name) as kept:
        assert Image.open(kept).format == "JPEG"


def test_no_photo_when_retention_was_turned_off_after_the_search(client, product, settings):
    query_id = kept_query(settings, b"kept, then retention off")
    settings.SEARCH_KEEP_QUERY_PHOTOS_DAYS = 0
    response = post(client, **feedback_fields(product, query_id=query_id))
    assert response.status_code == 201 and response.json()["photo_kept"] is False
    assert not default_storage.exists("feedback")


def test_a_real_search_with_retention_on_keeps_the_photo_for_feedback(
    client, indexed_shop, photo_bytes, settings
):
    settings.SEARCH_KEEP_QUERY_PHOTOS_DAYS = 7
    answer = client.post(SEARCH, {"image": upload("q.webp", photo_bytes("pan.webp")), "k": "2"}).json()
    top = answer["results"][0]
    fields = {"query_id": answer["query_id"], "product": top["product"]["id"], "verdict": "this_one"}

    response = post(client, **fields, rank=1, score=top["score"])

    assert response.json()["photo_kept"] is True
    with SearchFeedback.objects.get().photo.open("rb") as kept:
        assert Image.open(kept).size[0] > 0
