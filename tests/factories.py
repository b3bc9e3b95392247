"""Test data (factory_boy) as a user would make it: products and photos through the catalog's own
services, categories and users as the admin makes them.

Photos are real: a file name from tests/photos (see its ATTRIBUTION.md) or bytes built in a test, and
they go through ``product_image_create`` (decoding, hashes, screening, storage) like an upload.

    ProductFactory(sku="HAM-1", price="14.90", category=CategoryFactory(name="Tools"),
                   photos=["hammer1.webp"])
    UserFactory(permissions=["catalog.add_product"], token=True)
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils.text import slugify
from rest_framework.authtoken.models import Token

from catalog.models import Category, Product, ProductImage
from catalog.services import product_create, product_image_create

PHOTOS_DIR = Path(__file__).parent / "photos"
PASSWORD = "pw-for-tests-only"  # noqa: S105 - throwaway test accounts


def photo_data(photo: str | bytes) -> bytes:
    """The bytes of a photo given by its file name in tests/photos, or the bytes themselves."""
    if isinstance(photo, bytes):
        return photo
    path = PHOTOS_DIR / photo
    assert path.exists(), f"missing test photo {photo}"
    return path.read_bytes()


class CategoryFactory(factory.django.DjangoModelFactory):
    """A category as the admin makes one: the slug from the name unless given (and reused if taken)."""

    class Meta:
        model = Category
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.LazyAttribute(lambda category: slugify(category.name))
    parent = None


class ProductFactory(factory.Factory):
    """A product through ``product_create``; ``photos=[...]`` adds photos in that order."""

    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"SKU-{n}")
    name = factory.LazyAttribute(lambda product: product.sku.replace("-", " ").title())
    price = Decimal("10.00")
    currency = "EUR"
    category = None

    @classmethod
    def _create(cls, model_class, **fields) -> Product:
        return product_create(**fields)

    @factory.post_generation
    def photos(product: Product, create: bool, photos, **_) -> None:  # noqa: N805 - factory_boy's form
        for photo in photos or ():
            ProductImageFactory(product=product, photo=photo)


class ProductImageFactory(factory.Factory):
    """A stored photo through ``product_image_create``: the row it returns (existing for a repeat)."""

    class Meta:
        model = ProductImage

    product = factory.SubFactory(ProductFactory)
    photo = "cup.webp"
    original_name = factory.LazyAttribute(
        lambda image: image.photo if isinstance(image.photo, str) else f"{image.product.sku}.img"
    )

    @classmethod
    def _create(
        cls, model_class, *, product: Product, photo: str | bytes, original_name: str
    ) -> ProductImage:
        data = photo_data(photo)
        return product_image_create(product=product, file=data, original_name=original_name).image


class UserFactory(factory.django.DjangoModelFactory):
    """A user with a known password. ``permissions=["catalog.add_product", ...]`` grants them (as
    ``user.has_perm`` names them), ``token=True`` gives an API token (``user.auth_token.key``);
    ``staff`` and ``superuser`` are traits."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    class Params:
        staff = factory.Trait(is_staff=True)
        superuser = factory.Trait(is_staff=True, is_superuser=True)

    username = factory.Sequence(lambda n: f"user-{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.invalid")

    @factory.post_generation
    def password(user, create: bool, password, **_) -> None:  # noqa: N805 - factory_boy's form
        user.set_password(password or PASSWORD)
        if create:
            user.save(update_fields=["password"])

    @factory.post_generation
    def permissions(user, create: bool, names, **_) -> None:  # noqa: N805
        if create and names:
            user.user_permissions.set([_permission(name) for name in names])

    @factory.post_generation
    def token(user, create: bool, wanted, **_) -> None:  # noqa: N805
        if create and wanted:
            Token.objects.create(user=user)


def _permission(name: str) -> Permission:
    app_label, codename = name.split(".", 1)
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)
