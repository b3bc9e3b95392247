"""Property-based tests of the parsers that read what clients send: crop, base64, URLs, `k` and filters.

Each one takes any value and either returns a well-formed result or raises its own "bad input" error,
which the API turns into a 4xx; any other exception would be a 500.
"""

import base64
import math
import socket
import string
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from catalog.api.serializers import ProductFilterInputSerializer
from catalog.models import Category
from search.api.serializers import K_MAX, CropField, SearchOptionsInputSerializer, SimilarInputSerializer
from search.fetch import UrlFetchError, VettedUrl, vet_url
from search.fetch.addresses import _is_public
from search.uploads import QueryImageError, decode_base64_image, parse_crop

# Fast, deterministic runs that write nothing into the work tree (no example database).
PROPERTY = settings(max_examples=200, deadline=None, database=None, derandomize=True)
# Fixtures here are read-only (a fake resolver, one category), so sharing them across examples is fine.
PROPERTY_WITH_FIXTURES = settings(PROPERTY, suppress_health_check=[HealthCheck.function_scoped_fixture])

numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0, max_value=1),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.booleans(),
)
number_text = st.one_of(
    numbers.map(str), st.sampled_from(["", " ", "nan", "inf", "-0", "1e400", "0x1", "1_0", "½", "٣"])
)
scalars = st.one_of(st.none(), numbers, number_text, st.text(max_size=30))
# Anything a JSON body, form or query string can carry (parsers never hand over bytes), nested a little.
any_value = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.tuples(inner, inner, inner, inner),
        st.dictionaries(
            st.sampled_from(["x", "y", "w", "h", "z", ""]) | st.text(max_size=3), inner, max_size=5
        ),
    ),
    max_leaves=10,
)
fraction = st.floats(min_value=0, max_value=1)


@st.composite
def boxes(draw) -> tuple[float, float, float, float]:
    """Boxes near or inside the unit square: most are valid, some overshoot by a hair."""
    x, y = draw(fraction), draw(fraction)
    w = draw(st.floats(min_value=0, max_value=1 - x + 1e-8))
    h = draw(st.floats(min_value=0, max_value=1 - y + 1e-8))
    return x, y, w, h


def written_as(box: tuple[float, ...]) -> st.SearchStrategy:
    return st.sampled_from([",".join(map(repr, box)), list(box), dict(zip("xywh", box, strict=True))])


crop_like = st.one_of(
    any_value,
    boxes().flatmap(written_as),
    st.lists(number_text | numbers, min_size=4, max_size=4),
    st.lists(number_text, min_size=3, max_size=5).map(",".join),
    st.fixed_dictionaries({key: numbers | number_text for key in "xywh"}),
)


@PROPERTY
@given(crop_like)
def test_crop_is_a_box_inside_the_image_or_a_value_error(value):
    try:
        box = parse_crop(value)
    except ValueError:
        event("refused")
        return
    event("empty" if box is None else "a box")
    if box is None:
        return
    x, y, w, h = box
    assert all(isinstance(v, float) and math.isfinite(v) for v in box)
    assert 0 <= x <= 1 and 0 <= y <= 1 and 0 < w <= 1 and 0 < h <= 1
    assert x + w <= 1 + 1e-9 and y + h <= 1 + 1e-9


@PROPERTY
@given(crop_like)
def test_crop_field_answers_a_validation_error(value):
    """The API field gives the parser's box, or the parser's own message as a 400 field error."""
    try:
        expected = parse_crop(value)
    except ValueError as exc:
        with pytest.raises(serializers.ValidationError) as info:
            CropField().to_internal_value(value)
        assert info.value.detail == [str(exc)]
        return
    assert CropField().to_internal_value(value) == expected


base64_like = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=string.ascii_letters + string.digits + "+/=\n\r\t -_", max_size=200),
    st.binary(max_size=150).map(lambda data: base64.b64encode(data).decode()),
    st.tuples(
        st.sampled_from(["data:image/png;base64,", "data:image/x;base64,", "data:,"]), st.binary(max_size=90)
    ).map(lambda pair: pair[0] + base64.b64encode(pair[1]).decode()),
)


@PROPERTY
@given(base64_like, st.integers(min_value=1, max_value=200))
def test_base64_gives_bytes_within_the_limit_or_a_query_image_error(value, max_bytes):
    try:
        data = decode_base64_image(value, max_bytes=max_bytes)
    except QueryImageError as exc:
        event(f"refused: {exc.code}")
        assert exc.status_code in {400, 413}
        return
    event("decoded")
    assert isinstance(data, bytes) and 0 < len(data) <= max_bytes


@PROPERTY
@given(st.binary(min_size=1, max_size=150))
def test_base64_round_trips(data):
    assert decode_base64_image(base64.b64encode(data).decode(), max_bytes=150) == data


hosts = st.one_of(
    st.sampled_from(
        ["shop.example", "internal.example", "unknown.example", "SHOP.example", "a..b", "[::1]", "[2606::1]",
         "127.0.0.1", "2130706433", "0x7f.1", "[::ffff:10.0.0.1]", "[2002:7f00:1::1]", "ü.example", "x" * 64]
    ),
    st.text(max_size=20),
)  # fmt: skip
url_like = st.one_of(
    st.text(max_size=80),
    st.tuples(
        st.sampled_from(
            ["http://", "https://", "http://", "https://", "ftp://", "HTTP://", "http:", "//", ""]
        ),
        st.sampled_from(["", "", "", "", "", "user@", "user:pw@", ":@", "@"]),
        hosts,
        st.sampled_from(["", "", ":", ":80", ":0", ":-1", ":99999", ":8O", ":443", ":65535"]),
        st.one_of(
            st.just(""),
            st.text(max_size=20).map(lambda path: "/" + path),
            st.sampled_from(["?", "#x", "\\x"]),
        ),
    ).map("".join),
)


@pytest.fixture
def fake_dns(monkeypatch):
    """Resolve like the system does for names it cannot encode, and to a mix of answers otherwise."""

    def getaddrinfo(host, port, *args, **kwargs):
        host.encode("idna")  # UnicodeError for names the resolver cannot encode
        if host.startswith("unknown") or not host:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        address = "10.0.0.1" if "internal" in host else "93.184.215.14"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@PROPERTY_WITH_FIXTURES
@given(url_like)
def test_any_text_is_a_vetted_url_or_a_url_fetch_error(fake_dns, url):
    try:
        vetted = vet_url(url)
    except UrlFetchError as exc:
        event(f"refused: {exc.code}")
        assert exc.code in {"bad_url", "bad_scheme", "unresolvable", "private_address"}
        return
    event("vetted")
    assert isinstance(vetted, VettedUrl)
    assert vetted.scheme in {"http", "https"} and 0 < vetted.port < 65536
    assert _is_public(vetted.address)
    assert vetted.target.startswith("/")


# --- k and the catalog filters through the API's input serializers ---------------------------
k_like = st.one_of(any_value, st.integers(min_value=-5, max_value=K_MAX + 5), st.integers().map(str))
price_like = st.one_of(
    any_value,
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.decimals(min_value=0, max_value=10**9, places=2),
    st.sampled_from(["1e400", "-0", "0.001", "1E+5", "99999999999.99", "9" * 5000, " 5 ", "5,00"]),
)
anything_goes = st.fixed_dictionaries(
    {},
    optional={
        "k": k_like,
        "category": st.one_of(st.sampled_from(["tools", "TOOLS", "tools\x00", "nope", "", None]), any_value),
        "min_price": price_like,
        "max_price": price_like,
        "q": any_value,
    },
)
# Mostly well-formed: reaches the checks between fields (min_price <= max_price, the category).
plausible_price = st.one_of(st.decimals(min_value=0, max_value=1000, places=2), st.integers(0, 1000).map(str))
plausible = st.fixed_dictionaries(
    {"min_price": plausible_price, "max_price": plausible_price},
    optional={"k": st.integers(1, K_MAX), "category": st.sampled_from(["tools", "nope"]), "q": st.text()},
)
filters = st.one_of(anything_goes, plausible)
INPUT_SERIALIZERS = [SearchOptionsInputSerializer, SimilarInputSerializer, ProductFilterInputSerializer]


@pytest.mark.django_db
@PROPERTY_WITH_FIXTURES
@given(filters, st.sampled_from(INPUT_SERIALIZERS))
def test_k_and_filters_are_validated_or_refused(tools_category, data, serializer_class):
    serializer = serializer_class(data=data)
    if not serializer.is_valid():  # ValidationError caught: a 400; anything else propagates
        event("refused")
        assert serializer.errors
        return
    event("valid" + (" with a category" if serializer.validated_data.get("category") else ""))
    attrs = serializer.validated_data
    if "k" in attrs:
        assert isinstance(attrs["k"], int) and 1 <= attrs["k"] <= K_MAX
    for name in ("min_price", "max_price"):
        if attrs.get(name) is not None:
            price = attrs[name]
            assert isinstance(price, Decimal) and price.is_finite() and price >= 0
            assert price == price.quantize(Decimal("0.01"))
    if attrs.get("min_price") is not None and attrs.get("max_price") is not None:
        assert attrs["min_price"] <= attrs["max_price"]
    assert attrs.get("category") in {None, tools_category}


@pytest.fixture
def tools_category(db):
    return Category.objects.create(name="Tools", slug="tools")


def test_vet_url_properties_see_public_and_private_answers(fake_dns):
    # The URL property above is only worth something if its fake DNS can answer both ways.
    assert vet_url("http://shop.example/x.jpg").address == "93.184.215.14"
    with pytest.raises(UrlFetchError) as info:
        vet_url("http://internal.example/x.jpg")
    assert info.value.code == "private_address"


@pytest.mark.django_db
def test_api_crop_with_an_integer_too_large_for_a_float_is_a_400(client):
    # Found by the crop property: float() of a 400-digit JSON integer raises OverflowError (was a 500).
    body = '{"image": "aGVsbG8=", "crop": [0, 0, 0, %s]}' % ("1" * 400)
    response = client.post("/api/v1/search/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "crop" in response.json()["errors"]
