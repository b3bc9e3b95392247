"""Helpers for the admin tests: find a product's row in the change list, build inline form posts."""

import re
from html import unescape

from django.urls import reverse

from catalog.models import Product
from search.models import ImageEmbedding


def changelist_rows(html: str) -> dict[str, str]:
    """{sku: the row's HTML} for every product row of the admin change list."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = {}
    for row in re.findall(r"<tr.*?</tr>", body, flags=re.S):
        sku = re.search(r'<td class="field-sku">(?:<a[^>]*>)?([^<]+)', row) or re.search(
            r'<th class="field-sku">(?:<a[^>]*>)?([^<]+)', row
        )
        if sku:
            rows[unescape(sku.group(1))] = row
    return rows


def status_of(row_html: str) -> str:
    return re.search(r'admin-extra-status--([a-z-]+)"', row_html).group(1)


def failed_embedding(product: Product, reason: str) -> ImageEmbedding:
    """Mark the product's photo as failed under the current model, as the embedding task would."""
    from search.embedder import current_embedder

    image = product.images.get()
    return ImageEmbedding.objects.update_or_create(
        image=image,
        fingerprint=current_embedder().fingerprint,
        defaults={"content_sha256": image.sha256, "status": "failed", "error": reason},
    )[0]


def product_form_data(product: Product, images: list | None = None, **extra) -> dict:
    """POST data for the product change form with its image inline (existing rows + extra ones)."""
    images = list(product.images.all()) if images is None else images
    data = {
        "sku": product.sku,
        "name": product.name,
        "slug": product.slug,
        "category": product.category_id or "",
        "price": str(product.price),
        "currency": product.currency,
        "description": product.description,
        "images-TOTAL_FORMS": str(len(images) + 1),
        "images-INITIAL_FORMS": str(len(images)),
        "images-MIN_NUM_FORMS": "0",
        "images-MAX_NUM_FORMS": "1000",
        "_continue": "Save and continue editing",
    }
    if product.is_active:
        data["is_active"] = "on"
    for index, image in enumerate(images):
        data[f"images-{index}-id"] = str(image.pk)
        data[f"images-{index}-product"] = str(product.pk)
        data[f"images-{index}-display_order"] = str(image.display_order)
    data.update(extra)
    return data


def change_url(product: Product) -> str:
    return reverse("admin:catalog_product_change", args=[product.pk])
