"""Fixtures of the search tests: a six-product shop (built once per module, laid down for each test),
the same shop with a published index, and a fresh model for tests that change SEARCH_* settings.
Plain helpers (add_product, build_now, search_photo, ...) are in tests/search/shop_helpers.py."""

import pytest

from tests.catalog_snapshot import catalog_for_test, snapshot_take
from tests.factories import CategoryFactory
from tests.search.projection_helpers import train, trial
from tests.search.shop_helpers import add_product, build_now


@pytest.fixture
def fresh_embedder():
    """Forget the cached models before and after a test that changes SEARCH_* settings."""
    from search.embedder import reset_embedder
    from search.services.state import forget_index_model

    reset_embedder()
    forget_index_model()
    yield
    reset_embedder()
    forget_index_model()


@pytest.fixture
def model_fails(monkeypatch):
    """This process cannot load the model (as on a machine without weights), for one test: the loaded
    model is set aside (and put back after), and the engine's loader raises."""
    import search.embedder
    import search.embedding

    def unloadable(config):
        raise RuntimeError("no weights in /opt/models/resnet50.pth")

    monkeypatch.setattr(search.embedder, "_embedder", None)
    monkeypatch.setattr(search.embedder, "loaded_embedder", lambda: None)
    monkeypatch.setattr(search.embedding, "build_embedder", unloadable)


def shop_build() -> tuple[dict, dict]:
    """Six products with one real photo each, in nested categories: (products, categories)."""
    tools = CategoryFactory(name="Tools")
    hand = CategoryFactory(name="Hand tools", parent=tools)
    kitchen = CategoryFactory(name="Kitchen")
    home = CategoryFactory(name="Home")
    products = {
        "hammer": add_product("hammer", "hammer1.webp", price="25.00", category=hand),
        "scissors": add_product("scissors", "scissors1.webp", price="8.00", category=hand),
        "plier": add_product("plier", "plier1.webp", price="12.00", category=tools),
        "cup": add_product("cup", "cup.webp", price="5.00", category=kitchen),
        "pan": add_product("pan", "pan.webp", price="30.00", category=kitchen),
        "chair": add_product("chair", "chair.webp", price="80.00", category=home),
    }
    categories = {"tools": tools, "hand": hand, "kitchen": kitchen, "home": home}
    return products, categories


def indexed_shop_build() -> tuple[dict, dict]:
    shop = shop_build()
    assert build_now().status == "succeeded"
    return shop


@pytest.fixture(scope="module")
def _shop_snapshot(django_db_setup, django_db_blocker, tmp_path_factory):
    return snapshot_take(shop_build, tmp_path_factory.mktemp("shop"), django_db_blocker)


@pytest.fixture(scope="module")
def _indexed_shop_snapshot(django_db_setup, django_db_blocker, tmp_path_factory):
    return snapshot_take(indexed_shop_build, tmp_path_factory.mktemp("indexed-shop"), django_db_blocker)


@pytest.fixture
def shop(request, _isolated_media):
    """Six products with one real photo each; nothing embedded or indexed yet: (products, categories).
    (In a transactional test the photos are embedded, and an index built, as they commit.)"""
    return catalog_for_test(request, "_shop_snapshot", shop_build)


@pytest.fixture
def indexed_shop(request, _isolated_media):
    """The six-product shop, embedded, with a published index: (products, categories)."""
    return catalog_for_test(request, "_indexed_shop_snapshot", indexed_shop_build)


# --- the relevance self-test's shop: seven products, two of them sold with the very same photo --------

RELEVANCE_SHOP = [
    # (sku, category or None, photo in tests/photos)
    ("hammer", "Tools", "hammer1.webp"),
    ("hammer-twin", "Tools", "hammer1.webp"),  # the same picture: a confusion known by construction
    ("plier", "Tools", "plier1.webp"),
    ("cup", "Kitchen", "cup.webp"),
    ("pan", "Kitchen", "pan.webp"),
    ("chair", "Furniture", "chair.webp"),
    ("apple", None, "apple.jpg"),  # no category: left out of same-category precision
]


def relevance_shop_build() -> dict:
    """RELEVANCE_SHOP embedded and indexed: {sku: Product}. The twin's photo holds the same pixels as
    the hammer's, saved as PNG (another file, so another content hash and other variants)."""
    import io

    from catalog.imaging import load_image
    from tests.factories import PHOTOS_DIR

    products = {}
    for sku, category, photo in RELEVANCE_SHOP:
        data: str | bytes = photo
        if sku == "hammer-twin":
            out = io.BytesIO()
            # Decoded as every photo is (alpha on white), so both photos give the model the same pixels.
            load_image((PHOTOS_DIR / photo).read_bytes(), max_pixels=10**8).save(out, format="PNG")
            data = out.getvalue()
        products[sku] = add_product(sku, data, category=CategoryFactory(name=category) if category else None)
    assert build_now().status == "succeeded"
    return products


@pytest.fixture(scope="module")
def _relevance_shop_snapshot(django_db_setup, django_db_blocker, tmp_path_factory):
    return snapshot_take(relevance_shop_build, tmp_path_factory.mktemp("relevance-shop"), django_db_blocker)


@pytest.fixture
def relevance_shop(request, _isolated_media):
    """RELEVANCE_SHOP with a published index: {sku: Product}."""
    return catalog_for_test(request, "_relevance_shop_snapshot", relevance_shop_build)


# --- catalog-adapted projections (tests/search/projection_helpers.py) ---------------------------------


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"


@pytest.fixture
def better(relevance_shop, var_dir, fresh_embedder):
    """A projection of the relevance shop taken as better (plumbing only) whose trial self-test ran."""
    row = train(better=True)
    trial(row)
    return row


# --- Milvus Lite: one in-process engine per session (slow to start), one set of collections per test -------

_milvus_tests = iter(range(1, 10**6))


@pytest.fixture(scope="session")
def _milvus_lite_folder(tmp_path_factory):
    from milvus_lite import server_manager_instance

    yield str(tmp_path_factory.mktemp("milvus") / "lite.db")
    server_manager_instance.release_all()  # now, not at exit (when pytest has closed the log streams)


@pytest.fixture
def milvus_lite(settings, _milvus_lite_folder):
    """SEARCH_VECTOR_BACKEND=milvus on the session's Milvus Lite folder, with a prefix of this test's own
    (its collections and alias), dropped afterwards: tests roll their database back, not Milvus."""
    from search.services.milvus import milvus_connection
    from search.services.stores import forget_query_stores

    settings.SEARCH_VECTOR_BACKEND = "milvus"
    settings.SEARCH_MILVUS_URI = _milvus_lite_folder
    settings.SEARCH_MILVUS_PREFIX = f"test{next(_milvus_tests)}"
    forget_query_stores()
    client, prefix = milvus_connection(), f"{settings.SEARCH_MILVUS_PREFIX}_"
    yield settings.SEARCH_MILVUS_PREFIX
    for alias in client.list_aliases():
        if alias.startswith(prefix):
            client.drop_alias(alias)
    for name in client.list_collections():
        if name.startswith(prefix):
            client.drop_collection(name)
    forget_query_stores()
