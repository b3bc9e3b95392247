"""Categories and products: create, update, (de)activate, delete, with clear validation errors."""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from catalog import hooks
from catalog.models import Category, Product

_CURRENCY = re.compile(r"^[A-Z]{3}$")
# Fields product_update may change; everything else (ids, timestamps) is not the caller's to set.
_UPDATABLE = {"sku", "name", "slug", "description", "price", "currency", "category", "is_active"}
_SKU_MAX = Product._meta.get_field("sku").max_length
_NAME_MAX = Product._meta.get_field("name").max_length
_SLUG_MAX = Category._meta.get_field("slug").max_length
_CATEGORY_NAME_MAX = Category._meta.get_field("name").max_length


def category_get_or_create(*, name: str, parent: Category | None = None) -> Category:
    """The category called ``name`` (case-insensitive) under ``parent``, created with a unique slug."""
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError("A category needs a name.", code="category_name_missing")
    if len(name) > _CATEGORY_NAME_MAX:
        message = f"The category name {name[:20]!r}… is longer than {_CATEGORY_NAME_MAX} characters."
        raise ValidationError(message, code="category_name_too_long")
    existing = Category.objects.filter(name__iexact=name, parent=parent).first()
    if existing is not None:
        return existing
    base = slugify(name)[: _SLUG_MAX - 8] or "category"
    if parent is not None:
        base = f"{parent.slug}-{base}"[: _SLUG_MAX - 8]
    for attempt in range(1, 50):
        slug = base if attempt == 1 else f"{base}-{attempt}"
        if Category.objects.filter(slug=slug).exists():
            continue
        try:
            with transaction.atomic():
                return Category.objects.create(name=name, slug=slug, parent=parent)
        except IntegrityError:
            continue  # created concurrently: try the next slug (or find the other's row below)
    existing = Category.objects.filter(name__iexact=name, parent=parent).first()
    if existing is None:
        raise ValidationError(f"No free slug for category {name!r}.", code="category_slug_taken")
    return existing


def category_path_get_or_create(path: Iterable[str]) -> Category | None:
    """The last category of a path like ["Tools", "Hammers"], creating the missing ones."""
    category = None
    for name in path:
        category = category_get_or_create(name=name, parent=category)
    return category


def parse_price(value: object) -> Decimal:
    """A non-negative price with at most two decimals, from a Decimal, number or text like "12.50"."""
    text = str(value).strip() if value is not None else ""
    if not text:
        raise ValidationError("The price is missing.", code="price_missing")
    try:
        price = Decimal(text.replace(",", ".")) if isinstance(value, str) else Decimal(value)
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise ValidationError(f"The price {text!r} is not a number.", code="price_invalid") from exc
    if not price.is_finite():
        raise ValidationError(f"The price {text!r} is not a number.", code="price_invalid")
    if price < 0:
        raise ValidationError(f"The price {text} must not be negative.", code="price_negative")
    if price != price.quantize(Decimal("0.01")):
        raise ValidationError(f"The price {text} has more than two decimals.", code="price_precision")
    if price >= Decimal("1e10"):
        raise ValidationError(f"The price {text} is too large.", code="price_too_large")
    return price.quantize(Decimal("0.01"))


def parse_currency(value: str) -> str:
    currency = (value or "").strip().upper()
    if not _CURRENCY.match(currency):
        raise ValidationError(
            f"The currency {value!r} is not a three-letter ISO 4217 code like EUR.", code="currency_invalid"
        )
    return currency


def _clean_sku(sku: str) -> str:
    sku = (sku or "").strip()
    if not sku:
        raise ValidationError("The SKU is missing.", code="sku_missing")
    if len(sku) > _SKU_MAX:
        message = f"The SKU {sku[:20]}… is longer than {_SKU_MAX} characters."
        raise ValidationError(message, code="sku_too_long")
    return sku


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError("The product name is missing.", code="name_missing")
    if len(name) > _NAME_MAX:
        message = f"The product name is longer than {_NAME_MAX} characters."
        raise ValidationError(message, code="name_too_long")
    return name


def _sku_must_be_free(sku: str, *, exclude_pk: int | None = None) -> None:
    taken = Product.objects.filter(sku=sku).exclude(pk=exclude_pk)
    if taken.exists():
        raise ValidationError(f"A product with SKU {sku!r} already exists.", code="sku_taken")


@transaction.atomic
def product_create(
    *,
    sku: str,
    name: str,
    price: Decimal | str | int,
    currency: str,
    category: Category | None,
    description: str = "",
    is_active: bool = True,
    slug: str = "",
) -> Product:
    sku = _clean_sku(sku)
    _sku_must_be_free(sku)
    name = _clean_name(name)
    return Product.objects.create(
        sku=sku,
        name=name,
        slug=slugify(slug or name)[:220],
        price=parse_price(price),
        currency=parse_currency(currency),
        category=category,
        description=(description or "").strip(),
        is_active=is_active,
    )


@transaction.atomic
def product_update(*, product: Product, **fields: object) -> Product:
    """Change the given fields (validated like product_create); saves only what changed."""
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValidationError(f"Cannot update {', '.join(sorted(unknown))}.", code="field_not_updatable")
    cleaners = {
        "sku": _clean_sku,
        "name": _clean_name,
        "price": parse_price,
        "currency": parse_currency,
        "description": lambda value: (value or "").strip(),
        "is_active": bool,
        "category": lambda value: value,
        "slug": lambda value: slugify(value)[:220],
    }
    changed = []
    for name, value in fields.items():
        value = cleaners[name](value)
        if getattr(product, name) != value:
            setattr(product, name, value)
            changed.append(name)
    if "sku" in changed:
        _sku_must_be_free(product.sku, exclude_pk=product.pk)
    if "name" in changed and "slug" not in fields:  # a slug given with the name is kept as given
        product.slug = slugify(product.name)[:220]
        changed.append("slug")
    if changed:
        product.save(update_fields=[*changed, "updated_at"])
    return product


@transaction.atomic
def product_set_active(*, products: Iterable[Product], active: bool) -> int:
    """Show or hide products in search and listings; returns how many changed."""
    pks = [product.pk for product in products]
    changed = Product.objects.filter(pk__in=pks).exclude(is_active=active)
    count = changed.update(is_active=active, updated_at=timezone.now())
    if count:
        transaction.on_commit(lambda: hooks.products_changed.send(sender=Product, product_ids=pks))
    return count


@transaction.atomic
def product_delete(*, product: Product) -> None:
    """Delete a product and its photos; photo files go once the deletion commits."""
    product.delete()
