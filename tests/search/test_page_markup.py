"""What the shopper pages tell browsers, search engines and shared links: responsive WebP thumbnails
with their real sizes, the product photo's size before it loads, meta descriptions, Open Graph tags,
and the site's own page for a missing one."""

import re
from html import unescape
from pathlib import Path

import pytest
from django.urls import reverse
from PIL import Image

pytestmark = pytest.mark.django_db


def media_file(settings, url: str) -> Path:
    return Path(settings.MEDIA_ROOT) / re.sub(r"^(https?://[^/]+)?/media/", "", url)


def srcset_entries(srcset: str) -> list[tuple[str, int]]:
    return [
        (url, int(width[:-1])) for url, width in (entry.split() for entry in unescape(srcset).split(", "))
    ]


def meta(html: str, key: str) -> str:
    found = re.search(rf'<meta (?:name|property)="{re.escape(key)}" content="([^"]*)"', html)
    assert found, f"no <meta> {key}"
    return unescape(found.group(1))


def test_result_cards_offer_webp_sizes_described_by_their_longer_side(
    client, shop_catalog, photo_path, settings
):
    with photo_path("hammer2.webp").open("rb") as photo:
        html = client.post(reverse("shop-by-photo"), {"image": photo}).content.decode()

    sources = re.findall(r'<source type="image/webp" srcset="([^"]+)" sizes="([^"]+)">', html)
    assert len(sources) == len(shop_catalog)
    for srcset, sizes in sources:
        entries = srcset_entries(srcset)
        assert [width for _, width in entries] == sorted({width for _, width in entries})
        for url, width in entries:
            with Image.open(media_file(settings, url)) as picture:
                assert picture.format == "WEBP" and max(picture.size) == width
        assert sizes.startswith("auto, ")
    assert 'meta name="description" content="Show us a photo' in html


def test_product_page_head_and_main_photo(client, shop_catalog, settings):
    hammer = shop_catalog["HAM-1"]
    html = client.get(reverse("product-detail", kwargs={"pk": hammer.pk})).content.decode()

    summary = meta(html, "description")
    assert summary.startswith("Claw hammer, 14.90 EUR in Tools.") and len(summary) <= 160
    assert meta(html, "og:type") == "product"
    assert meta(html, "og:title") == "Claw hammer"
    assert meta(html, "og:description") == summary
    page_url = f"http://testserver{hammer.get_absolute_url()}"
    assert meta(html, "og:url") == page_url
    assert f'<link rel="canonical" href="{page_url}">' in html
    share_image = meta(html, "og:image")
    assert share_image.startswith("http://testserver/media/thumbs/800/")
    with Image.open(media_file(settings, share_image)) as picture:
        shared_size = picture.size
    assert (int(meta(html, "og:image:width")), int(meta(html, "og:image:height"))) == shared_size

    # The main photo: its space is reserved (the JPEG's own size), it is fetched first, not lazily.
    main = re.search(r'<a class="product__main-photo"[^>]*><picture>(.*?)</picture>', html).group(1)
    img = re.search(r"<img [^>]*>", main).group(0)
    assert f'width="{shared_size[0]}" height="{shared_size[1]}"' in img
    assert 'fetchpriority="high"' in img and "loading=" not in img
    srcset = re.search(r'<source type="image/webp" srcset="([^"]+)"', main).group(1)
    for url, width in srcset_entries(srcset):
        with Image.open(media_file(settings, url)) as picture:
            assert picture.format == "WEBP" and picture.width == width


def test_a_long_description_is_cut_for_the_meta_description(client, shop_catalog):
    from catalog.services import product_update

    cup = shop_catalog["CUP-1"]
    product_update(product=cup, description="A sturdy stoneware cup. " * 20)
    html = client.get(reverse("product-detail", kwargs={"pk": cup.pk})).content.decode()

    summary = meta(html, "description")
    assert summary.startswith("A sturdy stoneware cup. A sturdy") and summary.endswith("…")
    assert len(summary) == 160


def test_search_api_gives_the_cards_webp_sizes(client, shop_catalog, photo_path, settings):
    with photo_path("cup.webp").open("rb") as photo:
        body = client.post(reverse("api:search"), {"image": photo}).json()

    thumbnails = body["results"][0]["product"]["thumbnails"]
    assert thumbnails and [t["width"] for t in thumbnails] == sorted(t["width"] for t in thumbnails)
    for thumb in thumbnails:
        assert thumb["url"].startswith("http://testserver/media/thumbs/")
        with Image.open(media_file(settings, thumb["url"])) as picture:
            assert picture.format == "WEBP" and picture.size == (thumb["width"], thumb["height"])


def test_a_missing_page_is_the_shops_own_page(client):
    response = client.get("/products/999999/")

    html = response.content.decode()
    assert response.status_code == 404
    assert "<h1>Page not found</h1>" in html
    assert '<main id="main"' in html and 'href="/"' in html
