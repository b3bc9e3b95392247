"""Plain helpers for the search tests (the fixtures are in tests/search/conftest.py): products with
real photos through the catalog services, an inline index build, query photos made from others."""

import io
from decimal import Decimal

from PIL import Image

from catalog.models import Category, Product
from search.models import IndexBuild
from search.services import index_build_request, index_build_run
from tests.factories import ProductFactory


def add_product(
    sku: str, *photos: bytes | str, price: str = "10.00", category: Category | None = None
) -> Product:
    """A product named after its SKU with these photos (bytes, or file names in tests/photos)."""
    return ProductFactory(sku=sku, price=Decimal(price), category=category, photos=photos)


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


def search_photo(photo: bytes | Image.Image, *, k: int = 12, crop=None, **filters) -> list:
    """The hits of the one search service for a photo in hand (a PIL picture is sent as PNG)."""
    from search.services import PhotoSource, SearchFilters, photo_search

    if isinstance(photo, Image.Image):
        buf = io.BytesIO()
        photo.save(buf, format="PNG")
        photo = buf.getvalue()
    return photo_search(PhotoSource(data=photo), crop=crop, filters=SearchFilters(**filters), k=k).hits
