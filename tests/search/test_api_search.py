"""POST /api/v1/search/ with the real offline model on a tiny real catalog: upload, base64, URL,
filters, crop, parameter validation, throttling and the model/warnings fields."""

import base64
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.cache import cache
from PIL import Image

from tests.search.shop_helpers import build_now, side_by_side

pytestmark = pytest.mark.django_db

SEARCH = "/api/v1/search/"


def upload(name: str, data: bytes):
    file = io.BytesIO(data)
    file.name = name
    return file


def skus(response) -> list[str]:
    return [hit["product"]["sku"] for hit in response.json()["results"]]


def test_multipart_upload_finds_the_product_with_full_result_fields(client, indexed_shop, photo_bytes):
    response = client.post(SEARCH, {"image": upload("q.webp", photo_bytes("cup.webp")), "k": "3"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert len(body["results"]) == 3
    top = body["results"][0]
    assert top["product"]["sku"] == "cup"
    assert top["score"] == pytest.approx(1.0, abs=1e-3)
    product = top["product"]
    assert product["price"] == "5.00" and product["currency"] == "EUR"
    assert product["category"] == {"slug": "kitchen", "name": "Kitchen"}
    assert product["url"] == f"http://testserver/products/{product['id']}/"
    assert product["thumbnail_url"].startswith("http://testserver/media/thumbs/")
    assert top["matched_image"]["thumbnail_url"].startswith("http://testserver/")
    scores = [hit["score"] for hit in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert set(body["timings"]) >= {"read", "validate", "model", "total"}


def test_model_fields_and_fallback_warning(client, indexed_shop, photo_bytes):
    response = client.post(SEARCH, {"image": upload("q.jpg", photo_bytes("hammer2.webp"))})

    body = response.json()
    model = body["model"]
    # Test settings run the offline EfficientNet-Lite0 fallback for the requested resnet50.
    assert model["name"] == "efficientnet_lite0"
    assert model["fallback"] is True and model["pretrained"] is True and model["untrained"] is False
    assert model["fingerprint"] and model["weights_source"]
    assert any("fallback" in warning for warning in body["warnings"])
    assert len(body["results"]) == 6  # default k=12, but only six products exist


def test_similar_photo_ranks_same_kind_first(client, indexed_shop, photo_bytes):
    response = client.post(SEARCH, {"image": upload("q.webp", photo_bytes("hammer2.webp")), "k": "2"})
    assert response.status_code == 200
    assert skus(response)[0] == "hammer"


def test_json_base64_and_data_url(client, indexed_shop, photo_bytes):
    encoded = base64.b64encode(photo_bytes("pan.webp")).decode()
    for value in (encoded, f"data:image/webp;base64,{encoded}"):
        response = client.post(SEARCH, {"image": value, "k": 1}, content_type="application/json")
        assert response.status_code == 200, response.content
        assert skus(response) == ["pan"]


def test_filters_category_and_price(client, indexed_shop, photo_bytes):
    query = photo_bytes("hammer1.webp")
    by_category = client.post(SEARCH, {"image": upload("q.webp", query), "category": "kitchen"})
    assert set(skus(by_category)) == {"cup", "pan"}

    # A parent category includes its subcategories.
    tools = client.post(SEARCH, {"image": upload("q.webp", query), "category": "tools"})
    assert set(skus(tools)) == {"hammer", "scissors", "plier"}

    priced = client.post(
        f"{SEARCH}?min_price=6&max_price=26", {"image": upload("q.webp", query)}, format="multipart"
    )
    assert set(skus(priced)) == {"hammer", "scissors", "plier"}
    assert all(6 <= float(hit["product"]["price"]) <= 26 for hit in priced.json()["results"])


def test_crop_selects_the_object(client, indexed_shop, photo_bytes):
    chair = Image.open(io.BytesIO(photo_bytes("chair.webp")))
    both = side_by_side(photo_bytes("chair.webp"), photo_bytes("cup.webp"))
    split = chair.width * both.height / chair.height / both.width  # where the chair photo ends
    buf = io.BytesIO()
    both.save(buf, format="PNG")
    data = buf.getvalue()

    left = client.post(SEARCH, {"image": upload("b.png", data), "k": "1", "crop": f"0,0,{split:.4f},1"})
    right = client.post(
        f"{SEARCH}?k=1",  # parameters may come in the query string too
        {"image": base64.b64encode(data).decode(), "crop": {"x": split, "y": 0, "w": 1 - split, "h": 1}},
        content_type="application/json",
    )

    assert skus(left) == ["chair"]
    assert skus(right) == ["cup"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"k": "0"}, "k"),
        ({"k": "101"}, "k"),
        ({"k": "abc"}, "k"),
        ({"crop": "0.5,0.5,0.8,0.2"}, "crop"),
        ({"crop": "1,2,3"}, "crop"),
        ({"crop": "a,b,c,d"}, "crop"),
        ({"min_price": "20", "max_price": "10"}, "max_price"),
        ({"min_price": "-1"}, "min_price"),
        ({"category": "no-such-category"}, "category"),
    ],
)
def test_bad_parameters_are_field_errors(client, shop, photo_bytes, params, field):
    response = client.post(SEARCH, {"image": upload("q.webp", photo_bytes("cup.webp")), **params})

    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "Invalid input." and body["code"] == "invalid"
    assert list(body["errors"]) == [field]
    assert body["errors"][field][0]


def test_blank_form_fields_mean_not_given(client, indexed_shop, photo_bytes):
    blanks = {"k": "", "category": "", "min_price": "", "max_price": "", "crop": ""}
    response = client.post(SEARCH, {"image": upload("q.webp", photo_bytes("cup.webp")), **blanks})
    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) == 6  # the default k, no filter


def test_json_needs_exactly_one_of_image_or_url(client, shop):
    for payload in ({}, {"image": "aGVsbG8=", "url": "http://example.com/x.jpg"}):
        response = client.post(SEARCH, payload, content_type="application/json")
        assert response.status_code == 400
        assert "image" in response.json()["errors"]


def test_json_crop_object_is_validated(client, shop, photo_bytes):
    payload = {"image": base64.b64encode(photo_bytes("cup.webp")).decode(), "crop": {"x": 0.2, "y": 0}}
    response = client.post(SEARCH, payload, content_type="application/json")
    assert response.status_code == 400
    assert "missing w, h" in response.json()["errors"]["crop"][0]


class _OnePhoto(BaseHTTPRequestHandler):
    photo = b""

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")  # the type is not trusted anyway
        self.send_header("Content-Length", str(len(self.photo)))
        self.end_headers()
        self.wfile.write(self.photo)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def local_photo_url(settings, photo_bytes):
    _OnePhoto.photo = photo_bytes("chair.webp")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OnePhoto)
    port = server.server_address[1]
    settings.SEARCH_URL_ALLOWED_HOSTS = [f"127.0.0.1:{port}"]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/images/chair"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_url_search_via_allowed_local_server(client, indexed_shop, local_photo_url):
    response = client.post(SEARCH, {"url": local_photo_url, "k": 1}, content_type="application/json")
    assert response.status_code == 200, response.content
    assert skus(response) == ["chair"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://10.0.0.1/a.jpg",
        "http://169.254.169.254/latest/",
        "http://localhost/a.jpg",
    ],
)
def test_url_search_refuses_private_addresses(client, shop, url):
    response = client.post(SEARCH, {"url": url}, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"detail": "URL points to a private address.", "code": "private_address"}


@pytest.mark.parametrize("url", ["ftp://example.com/a.jpg", "file:///etc/passwd"])
def test_url_search_refuses_other_schemes(client, shop, url):
    response = client.post(SEARCH, {"url": url}, content_type="application/json")
    assert response.status_code == 400
    # DRF's URLField already refuses non-http(s) schemes; fetch.vet_url would refuse them too.
    assert response.json()["code"] in {"invalid", "bad_scheme"}


def test_anonymous_search_is_throttled_with_retry_after(client, shop, photo_bytes, settings):
    rates = {"search_anon": "2/minute"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    cache.clear()
    try:
        codes = [
            client.post(SEARCH, {"image": upload("q.webp", photo_bytes("cup.webp"))}).status_code
            for _ in range(3)
        ]
        assert codes == [200, 200, 429]
        response = client.post(SEARCH, {"image": upload("q.webp", photo_bytes("cup.webp"))})
        assert response.status_code == 429
        assert 0 < int(response["Retry-After"]) <= 60
        assert response.json()["code"] == "throttled"
        assert "throttled" in response.json()["detail"].lower()
    finally:
        cache.clear()


def test_kept_query_photo_is_reencoded_and_purged(client, shop, photo_bytes, settings):
    from datetime import timedelta

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.core.management import call_command
    from django.utils import timezone

    settings.SEARCH_KEEP_QUERY_PHOTOS_DAYS = 0
    client.post(SEARCH, {"image": upload("q.webp", photo_bytes("cup.webp"))})
    assert not default_storage.exists("queries")  # off by default: nothing stored

    settings.SEARCH_KEEP_QUERY_PHOTOS_DAYS = 7
    assert client.post(SEARCH, {"image": upload("q.webp", photo_bytes("cup.webp"))}).status_code == 200
    today = timezone.now().date().isoformat()
    kept = [f"queries/{today}/{name}" for name in default_storage.listdir(f"queries/{today}")[1]]
    assert len(kept) == 1 and kept[0].endswith(".jpg")
    with default_storage.open(kept[0]) as handle:
        assert Image.open(handle).format == "JPEG"  # re-encoded: no original bytes or EXIF kept

    old_day = (timezone.now() - timedelta(days=8)).date().isoformat()
    default_storage.save(f"queries/{old_day}/old.jpg", ContentFile(b"x"))
    out = io.StringIO()
    call_command("purge_query_photos", stdout=out)
    assert "Deleted 1 query photo" in out.getvalue()
    assert default_storage.listdir("queries")[0] == [today]
    assert default_storage.exists(kept[0])


def test_untrained_model_is_announced(client, shop, photo_bytes, settings, fresh_embedder):
    settings.SEARCH_UNTRAINED = True
    settings.SEARCH_BACKBONE = "resnet18"
    response = client.post(SEARCH, {"image": upload("q.webp", photo_bytes("cup.webp"))})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["model"]["untrained"] is True and body["model"]["pretrained"] is False
    assert body["model"]["name"] == "resnet18"
    assert any("untrained" in warning and "not meaningful" in warning for warning in body["warnings"])


def test_purge_with_retention_off_deletes_every_kept_photo(settings):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.core.management import CommandError, call_command

    settings.SEARCH_KEEP_QUERY_PHOTOS_DAYS = 0
    default_storage.save("queries/2026-01-02/a.jpg", ContentFile(b"x"))
    default_storage.save("queries/not-a-date/b.jpg", ContentFile(b"x"))  # not ours: left alone
    out = io.StringIO()
    call_command("purge_query_photos", stdout=out)
    assert "Deleted 1 query photo" in out.getvalue()
    assert default_storage.listdir("queries")[0] == ["not-a-date"]
    assert default_storage.exists("queries/not-a-date/b.jpg")
    with pytest.raises(CommandError, match="0 or more"):
        call_command("purge_query_photos", "--days", "-1")


@pytest.mark.parametrize("endpoint", ["api", "page"])
def test_the_same_large_jpeg_scores_one_through_api_and_page(client, shop, photo_bytes, endpoint):
    # Catalog photos are decoded with JPEG draft scaling and queries without a crop decode the same
    # way: the very photo in the catalog must come back first with a score of 1.0 on both paths.
    from tests.search.shop_helpers import add_product

    big = Image.open(io.BytesIO(photo_bytes("apple.jpg"))).convert("RGB").resize((1800, 1500))
    buf = io.BytesIO()
    big.save(buf, format="JPEG", quality=90)
    add_product("big-apple", buf.getvalue(), price="3.00")
    build_now()

    if endpoint == "api":
        response = client.post(SEARCH, {"image": upload("q.jpg", buf.getvalue()), "k": "1"})
        assert response.status_code == 200, response.content
        top = response.json()["results"][0]
        assert top["product"]["sku"] == "big-apple"
        assert top["score"] == pytest.approx(1.0, abs=1e-3)
    else:
        response = client.post("/", {"image": upload("q.jpg", buf.getvalue())})
        assert response.status_code == 200
        assert "Big Apple" in response.content.decode()
        assert "100% match" in response.content.decode()
