"""Object-aware search through the one query service and the API: the things in a shopper's photo are
found, each searched on its own, and the whole-photo answer ranks by the best evidence. Real photos:
catalog photos pasted into a real cluttered scene (tests/photos/box_in_scene.png, OpenCV's)."""

import io

import pytest
from PIL import Image
from rest_framework.test import APIClient

from search.services import PhotoSource, photo_search
from tests.search.shop_helpers import build_now

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

SCENE_SIZE = (1024, 768)


def scene_with(photo_bytes, placements: dict[str, tuple[int, int, int]]) -> tuple[bytes, dict[str, tuple]]:
    """The cluttered scene with catalog photos pasted at (x, y, width); returns JPEG bytes and each
    photo's true box in fractions of the scene."""
    scene = Image.open(io.BytesIO(photo_bytes("box_in_scene.png"))).convert("RGB").resize(SCENE_SIZE)
    boxes = {}
    for name, (x, y, width) in placements.items():
        photo = Image.open(io.BytesIO(photo_bytes(name))).convert("RGB")
        photo = photo.resize((width, round(photo.height * width / photo.width)))
        scene.paste(photo, (x, y))
        boxes[name] = (
            x / SCENE_SIZE[0],
            y / SCENE_SIZE[1],
            photo.width / SCENE_SIZE[0],
            photo.height / SCENE_SIZE[1],
        )
    out = io.BytesIO()
    scene.save(out, format="JPEG", quality=85)
    return out.getvalue(), boxes


def iou(a, b) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def on(box, truth) -> bool:
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    inside = truth[0] <= cx <= truth[0] + truth[2] and truth[1] <= cy <= truth[1] + truth[3]
    return inside and iou(box, truth) >= 0.4


def test_a_product_in_a_scene_is_found_boxed_and_first(shop, photo_bytes):
    build_now()
    data, truth = scene_with(photo_bytes, {"hammer1.webp": (560, 380, 340)})

    result = photo_search(PhotoSource(data=data), k=3)

    assert result.hits[0].product.sku == "hammer"
    best = max(result.objects, key=lambda found: iou(found.box, truth["hammer1.webp"]))
    assert iou(best.box, truth["hammer1.webp"]) >= 0.5
    assert best.hits[0].product.sku == "hammer"
    assert "objects" in result.timings


def test_two_products_in_one_photo_give_two_boxes_with_the_right_first_hit(shop, photo_bytes):
    build_now()
    data, truth = scene_with(photo_bytes, {"hammer1.webp": (40, 60, 330), "cup.webp": (620, 430, 330)})

    result = photo_search(PhotoSource(data=data), k=3)

    # A box "on" a product: its centre inside the pasted photo and IoU >= 0.4 with it (the detected box
    # hugs the thing itself, without the white studio background the catalog photo has around it).
    for name, sku in (("hammer1.webp", "hammer"), ("cup.webp", "cup")):
        matching = [found for found in result.objects if on(found.box, truth[name])]
        assert matching, f"no box on {name}: {[found.box for found in result.objects]}"
        assert matching[0].hits[0].product.sku == sku


def test_the_things_in_a_photo_are_ranked_with_one_read_of_the_photo_rows(shop, photo_bytes):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    build_now()
    data, _ = scene_with(photo_bytes, {"hammer1.webp": (40, 60, 330), "cup.webp": (620, 430, 330)})

    with CaptureQueriesContext(connection) as queries:
        result = photo_search(PhotoSource(data=data), k=3)

    # The combined ranking loads the candidate photos with their products (one query, one prefetch of
    # the products' photos); each thing's own hits reuse those rows instead of a query pair per thing.
    assert len(result.objects) >= 2
    photo_reads = [q["sql"] for q in queries.captured_queries if 'FROM "catalog_productimage"' in q["sql"]]
    assert len(photo_reads) == 2, photo_reads


def test_a_product_shot_gives_one_object_and_the_product_first(shop, photo_bytes):
    build_now()

    # Another photo of a catalog hammer, on a plain backdrop as shops and makers take them.
    result = photo_search(PhotoSource(data=photo_bytes("hammer2.webp")), k=3)

    assert len(result.objects) == 1  # the hammer, not its head and handle as more things
    assert result.objects[0].hits[0].product.sku == "hammer"
    assert result.hits[0].product.sku == "hammer"


def test_the_map_keeps_to_the_pixel_budget_and_precision_the_settings_give(
    shop, photo_bytes, settings, monkeypatch
):
    from search.embedding import Embedder

    build_now()
    square = Image.open(io.BytesIO(photo_bytes("hammer1.webp"))).convert("RGB").resize((1000, 1000))
    out = io.BytesIO()
    square.save(out, format="JPEG", quality=90)
    maps = []
    original = Embedder.feature_map

    def recorded(self, image, **kwargs):
        grid = original(self, image, **kwargs)
        maps.append((tuple(grid.shape[1:]), kwargs["bfloat16"]))
        return grid

    monkeypatch.setattr(Embedder, "feature_map", recorded)
    settings.SEARCH_OBJECTS_LONG_SIDE = 640
    for area, precision in ((0.75, "float32"), (1.0, "bfloat16")):
        settings.SEARCH_OBJECTS_MAX_AREA = area
        settings.SEARCH_OBJECTS_MAP_PRECISION = precision
        assert photo_search(PhotoSource(data=out.getvalue()), k=1).hits[0].product.sku == "hammer"

    # 544 x 544 (a 640 x 480 photo's pixels) in float32, then 640 x 640 in bfloat16
    assert maps == [((17, 17), False), ((20, 20), True)]


def test_an_explicit_crop_skips_finding_objects(shop, photo_bytes):
    build_now()
    data, truth = scene_with(photo_bytes, {"cup.webp": (620, 430, 330)})

    result = photo_search(PhotoSource(data=data), k=1, crop=truth["cup.webp"])

    assert result.objects == [] and "objects" not in result.timings
    assert result.hits[0].product.sku == "cup"


def test_api_answers_objects_and_objects_false_turns_finding_off(shop, photo_bytes):
    build_now()
    data, truth = scene_with(photo_bytes, {"hammer1.webp": (560, 380, 340)})
    client = APIClient()

    def search(**options):
        upload = io.BytesIO(data)
        upload.name = "scene.jpg"
        return client.post("/api/v1/search/", {"image": upload, "k": 3, **options}, format="multipart").json()

    found = search()
    assert found["objects"], found
    first = found["objects"][0]
    assert set(first) == {"box", "score", "results", "query_id"} and set(first["box"]) == {"x", "y", "w", "h"}
    assert any(
        iou(tuple(o["box"][key] for key in "xywh"), truth["hammer1.webp"]) >= 0.5
        and o["results"][0]["product"]["sku"] == "hammer"
        for o in found["objects"]
    )
    plain = search(objects="false")
    assert plain["objects"] == [] and "objects" not in plain["timings"]


def test_a_photo_of_something_not_sold_is_nothing_close(shop, photo_bytes, client):
    """The shop sells tools, kitchenware and a chair; an orange is not among them."""
    build_now()
    api = APIClient()

    def search(name):
        upload = io.BytesIO(photo_bytes(name))
        upload.name = name
        return api.post("/api/v1/search/", {"image": upload, "k": 3}, format="multipart").json()

    orange, cup = search("orange.jpg"), search("cup.webp")
    assert orange["nothing_close"] is True and orange["results"], orange  # still the nearest items
    assert {hit["match"] for hit in orange["results"]} == {"weak"}
    assert cup["nothing_close"] is False and cup["results"][0]["match"] == "close"
    upload = io.BytesIO(photo_bytes("orange.jpg"))
    upload.name = "orange.jpg"
    page = client.post("/", {"image": upload}).content.decode()
    assert "Nothing close was found" in page and "Nearest item" in page and "% match" not in page
