"""Helpers for the search service tests: a small real catalog built through catalog.services.

Not a conftest on purpose (other engineers own tests/search/*): test modules import the fixtures.
"""

import io
from decimal import Decimal

import pytest
from PIL import Image

from catalog.models import Category, Product
from catalog.services import product_create, product_image_create
from search.embedder import reset_embedder
from search.models import IndexBuild
from search.services import index_build_request, index_build_run


def add_product(sku: str, *photos: bytes, price: str = "10.00", category: Category | None = None) -> Product:
    product = product_create(
        sku=sku, name=sku.replace("-", " ").title(), price=Decimal(price), currency="EUR", category=category
    )
    for data in photos:
        product_image_create(product=product, file=data, original_name=f"{sku}.img")
    return product


def build_now() -> IndexBuild:
    """Requests and runs a build inline (the worker's job), returning the finished row."""
    build = index_build_request(enqueue=False)
    return index_build_run(build_id=build.pk)


def recompressed(data: bytes, *, scale: float = 0.6, quality: int = 70) -> bytes:
    picture = Image.open(io.BytesIO(data)).convert("RGB")
    small = picture.resize((int(picture.width * scale), int(picture.height * scale)))
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def side_by_side(left: bytes, right: bytes, height: int = 300) -> Image.Image:
    """One picture with two photos next to each other (for crop tests)."""
    pictures = [Image.open(io.BytesIO(data)).convert("RGB") for data in (left, right)]
    pictures = [p.resize((int(p.width * height / p.height), height)) for p in pictures]
    canvas = Image.new("RGB", (sum(p.width for p in pictures), height), "white")
    canvas.paste(pictures[0], (0, 0))
    canvas.paste(pictures[1], (pictures[0].width, 0))
    return canvas


@pytest.fixture
def fresh_embedder():
    """Forget the cached models before and after a test that changes SEARCH_* settings."""
    from search.services.state import forget_index_model

    reset_embedder()
    forget_index_model()
    yield
    reset_embedder()
    forget_index_model()


@pytest.fixture
def shop(photo_bytes):
    """Six products with one real photo each; nothing embedded or indexed yet."""
    tools = Category.objects.create(name="Tools", slug="tools")
    hand = Category.objects.create(name="Hand tools", slug="hand-tools", parent=tools)
    kitchen = Category.objects.create(name="Kitchen", slug="kitchen")
    home = Category.objects.create(name="Home", slug="home")
    products = {
        "hammer": add_product("hammer", photo_bytes("hammer1.webp"), price="25.00", category=hand),
        "scissors": add_product("scissors", photo_bytes("scissors1.webp"), price="8.00", category=hand),
        "plier": add_product("plier", photo_bytes("plier1.webp"), price="12.00", category=tools),
        "cup": add_product("cup", photo_bytes("cup.webp"), price="5.00", category=kitchen),
        "pan": add_product("pan", photo_bytes("pan.webp"), price="30.00", category=kitchen),
        "chair": add_product("chair", photo_bytes("chair.webp"), price="80.00", category=home),
    }
    categories = {"tools": tools, "hand": hand, "kitchen": kitchen, "home": home}
    return products, categories


def search_photo(photo: bytes | Image.Image, *, k: int = 12, crop=None, **filters) -> list:
    """The hits of the one search service for a photo in hand (a PIL picture is sent as PNG)."""
    from search.services import PhotoSource, SearchFilters, photo_search

    if isinstance(photo, Image.Image):
        buf = io.BytesIO()
        photo.save(buf, format="PNG")
        photo = buf.getvalue()
    return photo_search(PhotoSource(data=photo), crop=crop, filters=SearchFilters(**filters), k=k).hits
