"""Product admin: list (thumbnails, index status, filters, search), actions, change page, photo inline."""

import io
import re
from unittest import mock

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog.models import Product, ProductImage
from catalog.services import product_create, product_image_create
from catalog.services.moderation import flagged_image_create
from search.models import ImageEmbedding
from tests.catalog.admin_helpers import (
    change_url,
    changelist_rows,
    failed_embedding,
    product_form_data,
    status_of,
)
from tests.factories import CategoryFactory

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:catalog_product_changelist")


@pytest.fixture
def catalog_states(shop_catalog, photo_bytes):
    """The indexed shop catalog plus one product in each other state: pending, failed, no photo."""
    pending = product_create(sku="BLB-1", name="Light bulb", price="2.00", currency="EUR", category=None)
    product_image_create(product=pending, file=photo_bytes("bulb.webp"), original_name="bulb.webp")
    failed = product_create(sku="BOX-1", name="Cardboard box", price="1.00", currency="EUR", category=None)
    product_image_create(product=failed, file=photo_bytes("box.png"), original_name="box.png")
    failed_embedding(failed, "cannot identify image file")
    bare = product_create(sku="NOP-1", name="Mystery item", price="3.00", currency="EUR", category=None)
    return {**shop_catalog, "BLB-1": pending, "BOX-1": failed, "NOP-1": bare}


def test_list_shows_each_products_index_status_and_reason(admin_client, catalog_states):
    rows = changelist_rows(admin_client.get(CHANGELIST).content.decode())
    assert set(rows) == set(catalog_states)
    assert status_of(rows["HAM-1"]) == "indexed"
    assert status_of(rows["BLB-1"]) == "pending"
    assert status_of(rows["BOX-1"]) == "failed"
    assert "cannot identify image file" in rows["BOX-1"]  # the reason is on the page, not only a tooltip
    assert status_of(rows["NOP-1"]) == "no-photo"


def test_list_thumbnails_are_small_cached_files_not_the_photo(admin_client, catalog_states, settings):
    rows = changelist_rows(admin_client.get(CHANGELIST).content.decode())
    assert 'src="/media/thumbs/128/' in rows["HAM-1"]
    assert "no photo" in rows["NOP-1"]
    thumbs = list((settings.MEDIA_ROOT / "thumbs" / "128").iterdir())
    assert thumbs and all(path.stat().st_size < 20_000 for path in thumbs)
    assert "14.90 EUR" in rows["HAM-1"] and "Tools" in rows["HAM-1"]


def test_list_query_count_does_not_grow_with_products(admin_client, catalog_states, photo_bytes):
    admin_client.get(CHANGELIST)  # warm up: thumbnails, model, content types
    with CaptureQueriesContext(connection) as before:
        admin_client.get(CHANGELIST)
    for index, photo in enumerate(["orange.jpg", "hammer2.webp", "box_in_scene.png"]):
        extra = product_create(
            sku=f"EXT-{index}", name=f"Extra {index}", price="1.00", currency="EUR", category=None
        )
        product_image_create(product=extra, file=photo_bytes(photo), original_name=photo)
    admin_client.get(CHANGELIST)  # thumbnails of the new photos
    with CaptureQueriesContext(connection) as after:
        response = admin_client.get(CHANGELIST)
    assert len(changelist_rows(response.content.decode())) == len(catalog_states) + 3
    assert len(after) == len(before)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("failed", {"BOX-1"}),
        ("pending", {"BLB-1"}),
        ("no-photo", {"NOP-1"}),
        ("indexed", {"HAM-1", "SCI-1", "PLI-1", "CUP-1", "PAN-1", "CHA-1", "APL-1"}),
    ],
)
def test_index_status_filter(admin_client, catalog_states, state, expected):
    response = admin_client.get(CHANGELIST, {"index_status": state})
    assert set(changelist_rows(response.content.decode())) == expected


def test_category_active_filters_and_sku_search(admin_client, catalog_states):
    kitchen = catalog_states["CUP-1"].category
    by_category = changelist_rows(
        admin_client.get(CHANGELIST, {"category__id__exact": kitchen.pk}).content.decode()
    )
    assert set(by_category) == {"CUP-1", "PAN-1"}
    Product.objects.filter(sku="PAN-1").update(is_active=False)
    inactive = changelist_rows(admin_client.get(CHANGELIST, {"is_active__exact": "0"}).content.decode())
    assert set(inactive) == {"PAN-1"}
    found = changelist_rows(admin_client.get(CHANGELIST, {"q": "sci-1"}).content.decode())
    assert set(found) == {"SCI-1"}
    by_name = changelist_rows(admin_client.get(CHANGELIST, {"q": "hammer"}).content.decode())
    assert set(by_name) == {"HAM-1"}


def _action(admin_client, action: str, *products):
    data = {"action": action, "_selected_action": [p.pk for p in products]}
    return admin_client.post(CHANGELIST, data, follow=True)


def test_deactivate_and_activate_actions(admin_client, shop_catalog):
    hammer, cup = shop_catalog["HAM-1"], shop_catalog["CUP-1"]
    response = _action(admin_client, "deactivate", hammer, cup)
    assert "2 product(s) deactivated." in response.content.decode()
    assert set(Product.objects.filter(is_active=False).values_list("sku", flat=True)) == {"HAM-1", "CUP-1"}
    _action(admin_client, "activate", hammer)
    assert set(Product.objects.filter(is_active=False).values_list("sku", flat=True)) == {"CUP-1"}


def test_reembed_action_enqueues_the_photos_and_retries_failed_ones(admin_client, catalog_states):
    failed, pending = catalog_states["BOX-1"], catalog_states["BLB-1"]
    with mock.patch("search.tasks.embed_images.delay_on_commit") as enqueue:
        response = _action(admin_client, "reembed", failed, pending)
    enqueue.assert_called_once()
    assert sorted(enqueue.call_args.args[0]) == sorted(
        ProductImage.objects.filter(product__in=[failed, pending]).values_list("pk", flat=True)
    )
    assert (
        "Embedding queued for 2 photo(s) (up-to-date vectors are kept; 1 failed one(s) will be retried)."
        in response.content.decode()
    )
    assert not ImageEmbedding.objects.filter(image__product=failed, status="failed").exists()


def test_search_with_photo_action_shows_the_hits_for_the_primary_photo(admin_client, shop_catalog):
    hammer = shop_catalog["HAM-1"]
    response = _action(admin_client, "search_with_photo", hammer)
    assert response.redirect_chain[-1][0] == reverse("admin:catalog_product_photo_search", args=[hammer.pk])
    html = response.content.decode()
    cards = html.split('class="admin-extra-cards"')[1]
    assert cards.index("Claw hammer") < cards.index("Coffee cup")  # the same photo ranks first
    assert "100%" in cards.split("</li>")[0]


def test_search_with_photo_needs_exactly_one_product(admin_client, shop_catalog):
    response = _action(admin_client, "search_with_photo", shop_catalog["HAM-1"], shop_catalog["CUP-1"])
    assert "Select exactly one product" in response.content.decode()


def test_change_page_shows_visually_similar_products_with_links(admin_client, shop_catalog, photo_bytes):
    second = product_create(sku="HAM-2", name="Framing hammer", price="19.00", currency="EUR", category=None)
    product_image_create(product=second, file=photo_bytes("hammer2.webp"), original_name="hammer2.webp")
    from search.services import images_embed

    images_embed(image_ids=list(second.images.values_list("pk", flat=True)), schedule_build=False)
    html = admin_client.get(change_url(shop_catalog["HAM-1"])).content.decode()
    panel = html.split('id="similar-products"')[1]
    assert "Framing hammer" in panel
    assert f'href="{change_url(second)}"' in panel
    assert "/media/thumbs/160/" in panel
    assert "Claw hammer" not in panel.split("</div>")[0]  # never the product itself


def _post_photo(admin_client, product, name: str, data: bytes):
    upload = SimpleUploadedFile(name, data)
    form = product_form_data(
        product, **{"images-1-upload" if product.images.exists() else "images-0-upload": upload}
    )
    return admin_client.post(change_url(product), form, follow=True)


def test_inline_adds_a_photo_through_the_service(admin_client, product, photo_bytes):
    response = _post_photo(admin_client, product, "hammer1.webp", photo_bytes("hammer1.webp"))
    assert response.status_code == 200
    image = product.images.get()
    assert len(image.sha256) == 64 and image.phash and image.original_name == "hammer1.webp"
    assert "/media/thumbs/160/" in response.content.decode()  # the preview in the inline


def test_inline_refuses_a_flagged_picture_with_the_reason(admin_client, product, photo_bytes):
    flagged_image_create(file=photo_bytes("scissors1.webp"), reason="Copyrighted studio shot")
    response = _post_photo(admin_client, product, "scissors.webp", photo_bytes("scissors1.webp"))
    html = response.content.decode()
    assert "This picture is not allowed in the shop: Copyrighted studio shot." in html
    assert product.images.count() == 0


def test_inline_refuses_a_file_that_is_not_a_photo(admin_client, product):
    response = _post_photo(admin_client, product, "notes.jpg", b"just some text")
    assert "errorlist" in response.content.decode()
    assert product.images.count() == 0


def test_inline_warns_with_a_link_when_another_product_has_the_same_photo(
    admin_client, shop_catalog, photo_bytes
):
    copy = product_create(sku="HAM-9", name="Hammer copy", price="1.00", currency="EUR", category=None)
    response = _post_photo(admin_client, copy, "hammer.webp", photo_bytes("hammer1.webp"))
    warnings = [m for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    assert len(warnings) == 1
    assert "Claw hammer" in str(warnings[0])
    assert f'<a href="{change_url(shop_catalog["HAM-1"])}">' in response.content.decode()
    assert copy.images.count() == 1  # a warning, not a refusal


def test_inline_reorders_and_deletes_photos(admin_client, product, photo_bytes):
    first = product_image_create(product=product, file=photo_bytes("hammer1.webp")).image
    second = product_image_create(product=product, file=photo_bytes("hammer2.webp")).image
    data = product_form_data(product, **{"images-0-display_order": "5", "images-1-display_order": "1"})
    admin_client.post(change_url(product), data)
    assert [image.pk for image in product.images.order_by("display_order")] == [second.pk, first.pk]
    data = product_form_data(product, **{"images-0-DELETE": "on"})
    admin_client.post(change_url(product), data)
    assert list(product.images.values_list("pk", flat=True)) == [first.pk]


def test_photo_inline_is_not_shown_as_an_io_error_for_big_garbage(admin_client, product):
    garbage = io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\x00" * 1000).getvalue()
    response = _post_photo(admin_client, product, "broken.png", garbage)
    assert response.status_code == 200
    assert product.images.count() == 0


def test_add_page_creates_the_product_with_its_first_photo(admin_client, photo_bytes):
    data = {
        "sku": "NEW-1",
        "name": "New hammer",
        "slug": "new-hammer",
        "price": "9.99",
        "currency": "EUR",
        "is_active": "on",
        "images-TOTAL_FORMS": "1",
        "images-INITIAL_FORMS": "0",
        "images-MIN_NUM_FORMS": "0",
        "images-MAX_NUM_FORMS": "1000",
        "images-0-upload": SimpleUploadedFile("hammer.webp", photo_bytes("hammer1.webp")),
    }
    response = admin_client.post(reverse("admin:catalog_product_add"), data)
    assert response.status_code == 302, response.content.decode()
    product = Product.objects.get(sku="NEW-1")
    assert product.images.get().original_name == "hammer.webp"


def test_the_category_choice_names_the_parent_so_two_tools_differ(admin_client):
    garden = CategoryFactory(name="Garden")
    CategoryFactory(name="Tools")
    CategoryFactory(name="Tools", slug="garden-tools", parent=garden)
    page = admin_client.get(reverse("admin:catalog_product_add")).content.decode()
    options = re.findall(r"<option value=\"\d+\">([^<]*)</option>", page)
    assert "Garden &gt; Tools" in options and "Tools" in options, options
