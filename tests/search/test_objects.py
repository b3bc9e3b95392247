"""Finding the things in a shopper's photo (search.embedding.objects), on real photos and the real model."""

import numpy as np
import pytest
import torch
from PIL import Image

from search.embedding import EmbedderConfig, build_embedder, crop_fraction, load_image
from search.embedding.embedder import bfloat16_is_fast
from search.embedding.objects import (
    ObjectBox,
    ObjectFinder,
    embed_with_objects,
    find_objects,
    regions,
    share_inside,
)
from tests.conftest import PHOTOS_DIR

LIMIT = 40_000_000
WHOLE = (0.0, 0.0, 1.0, 1.0)
# The test catalog: real product photos; the scene (campus.jpg) is not in it.
CATALOG = ["hammer1.webp", "hammer2.webp", "scissors1.webp", "plier1.webp", "cup.webp", "chair.webp"]
CATALOG += ["bulb.webp", "pan.webp", "box.png", "apple.jpg", "orange.jpg", "multimeter1.webp"]
HAMMER2 = (0.12, 0.24, 0.79, 0.56)  # the hammer in hammer2.webp (320 x 240), read off the photo


def photo(name: str) -> Image.Image:
    return load_image(PHOTOS_DIR / name, max_pixels=LIMIT)


def pasted(scene: Image.Image, product: Image.Image, *, x: float, y: float, width: float, angle: float):
    """``product`` scaled to ``width`` of the scene, rotated, pasted at (x, y); the scene and its true box."""
    size = (round(width * scene.width), round(width * scene.width * product.height / product.width))
    thing = product.resize(size, Image.Resampling.BICUBIC).rotate(angle, expand=True)
    mask = Image.new("L", size, 255).rotate(angle, expand=True)
    left, top = round(x * scene.width), round(y * scene.height)
    out = scene.copy()
    out.paste(thing, (left, top), mask)
    return out, (left / out.width, top / out.height, thing.width / out.width, thing.height / out.height)


def assert_inside_unit_square(boxes: list[ObjectBox]) -> None:
    for box in boxes:
        assert 0 <= box.x < 1 and 0 <= box.y < 1 and box.w > 0 and box.h > 0
        assert box.x + box.w <= 1 + 1e-9 and box.y + box.h <= 1 + 1e-9
        assert 0 <= box.score <= 1


# --- the grid logic, on feature maps built by hand (no model) -------------------------------------


def grid_with_blobs(blobs, shape=(10, 15), dim=32, seed=0, kinds=1, strength=None):
    """A (dim, h, w) feature map: a textured background and, in each (r0, r1, c0, c1) blob, strong
    features of another kind, as a backbone shows a thing on a desk. The background is one kind of
    stuff (a plain backdrop: a studio white, a table top) or, with ``kinds`` > 1, a mix of that many
    kinds cell by cell (a scene: wall, floor, shelves)."""
    rng = np.random.default_rng(seed)
    grid = np.abs(rng.normal(0.0, 0.1, (dim, *shape)))
    kind = np.zeros(shape, dtype=int) if kinds == 1 else rng.integers(dim - kinds, dim, size=shape)
    grid += np.moveaxis(np.eye(dim)[kind], -1, 0)
    for k, (r0, r1, c0, c1) in enumerate(blobs):
        grid[:, r0:r1, c0:c1] += (strength or [4.0] * len(blobs))[k] * np.eye(dim)[k + 1][:, None, None]
    return grid.astype(np.float32)


def shown(boxes: list[ObjectBox]) -> list[ObjectBox]:
    """What a shopper is shown: the things, not the parts of a thing."""
    return [box for box in boxes if not box.part]


def test_a_standout_block_of_cells_becomes_the_main_box():
    boxes = ObjectFinder().boxes(grid_with_blobs([(3, 6, 6, 10)]))
    main = boxes[0]
    assert main.crop == pytest.approx((6 / 15, 3 / 10, 4 / 15, 3 / 10))
    assert main.score == max(box.score for box in boxes) > 0
    assert_inside_unit_square(boxes)


def test_two_blocks_apart_give_two_boxes():
    truths = [(1 / 15, 2 / 10, 3 / 15, 3 / 10), (10 / 15, 5 / 10, 4 / 15, 4 / 10)]
    boxes = ObjectFinder().boxes(grid_with_blobs([(2, 5, 1, 4), (5, 9, 10, 14)]))
    for truth in truths:
        assert max(box.iou(truth) for box in boxes) > 0.99


def test_max_objects_is_respected_and_must_be_positive():
    grid = grid_with_blobs([(1, 3, 1, 3), (1, 3, 6, 8), (6, 8, 1, 3), (6, 8, 6, 8), (6, 8, 11, 13)])
    assert len(ObjectFinder().boxes(grid)) == 5
    assert len(ObjectFinder(max_objects=2).boxes(grid)) == 2
    with pytest.raises(ValueError, match="max_objects"):
        ObjectFinder(max_objects=0)


def test_weak_boxes_are_dropped_but_the_main_box_stays():
    grid = grid_with_blobs([(1, 3, 1, 3), (6, 8, 6, 8)], kinds=8)  # a scene, not a product shot
    everything = ObjectFinder(min_score=0.0).boxes(grid)
    assert len(everything) > 1
    assert ObjectFinder(min_score=1.0).boxes(grid) == everything[:1]


def test_on_a_plain_backdrop_one_thing_of_two_looks_is_one_box_and_its_pieces_are_parts():
    # A hammer on a table: a strong head (cells 3-5 x 2-4) and a weaker handle right of it (3-5 x 4-11).
    head, handle = (3, 6, 2, 4), (3, 6, 4, 12)
    grid = grid_with_blobs([head, handle], strength=[6.0, 2.0])
    boxes = ObjectFinder().boxes(grid)
    assert len(shown(boxes)) == 1
    assert shown(boxes)[0].iou((2 / 15, 3 / 10, 10 / 15, 3 / 10)) > 0.99  # the whole hammer
    assert all(box.part for box in boxes[1:])  # the head alone, the handle alone: parts of it


def test_max_parts_keeps_the_best_scoring_parts_and_every_thing():
    # A thing of three looks on a plain backdrop (a hammer's head, its handle, a rubber grip).
    head, handle, grip = (3, 6, 2, 4), (3, 6, 4, 12), (3, 6, 12, 14)
    grid = grid_with_blobs([head, handle, grip], strength=[6.0, 2.0, 4.0])
    boxes = ObjectFinder().boxes(grid)
    parts = [box for box in boxes if box.part]
    assert len(parts) >= 2
    best = max(parts, key=lambda box: box.score)
    assert ObjectFinder(max_parts=1).boxes(grid) == [*shown(boxes), best]
    assert ObjectFinder(max_parts=0).boxes(grid) == shown(boxes)
    with pytest.raises(ValueError, match="max_parts"):
        ObjectFinder(max_parts=-1)


def test_a_part_of_a_thing_is_no_part_in_a_scene():
    head, handle = (3, 6, 2, 4), (3, 6, 4, 12)
    boxes = ObjectFinder().boxes(grid_with_blobs([head, handle], strength=[6.0, 2.0], kinds=8))
    assert not any(box.part for box in boxes)  # no backdrop to tell a thing by: every box is shown


def test_a_uniform_picture_gives_the_whole_photo():
    assert ObjectFinder().boxes(np.ones((8, 6, 9), dtype=np.float32)) == [ObjectBox(*WHOLE, 0.0)]


def test_regions_are_8_connected():
    mask = np.array([[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=bool)
    found = sorted(sorted(map(tuple, cells.tolist())) for cells in regions(mask))
    assert found == [[(0, 0), (1, 1)], [(0, 3)], [(2, 3)]]


# --- the real model ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    config = EmbedderConfig(
        backbone="resnet50",
        torch_home=str(tmp_path_factory.mktemp("torch-home")),
        allow_download=False,
        threads=2,
        batch_size=2,  # smaller than a query's boxes + whole photo: embed_with_objects must not split
    )
    return build_embedder(config)


@pytest.fixture(scope="module")
def catalog_vectors(embedder):
    return embedder.embed([photo(name) for name in CATALOG])


@pytest.mark.slow
def test_feature_map_is_the_loaded_models_own(embedder):
    square = photo("cup.webp").resize((224, 224), Image.Resampling.BICUBIC)
    grid = embedder.feature_map(square, long_side=224)
    assert tuple(grid.shape) == (1280, 7, 7)
    pooled = torch.nn.functional.normalize(grid.mean(dim=(1, 2)), dim=0).numpy()
    pixels = torch.from_numpy(np.array(square)).permute(2, 0, 1).unsqueeze(0)
    assert float(pooled @ embedder.embed_tensor(pixels)[0]) > 0.9999  # what the model's forward pools


@pytest.mark.slow
def test_feature_map_keeps_the_aspect_ratio_without_a_centre_crop(embedder):
    scene = photo("campus.jpg")  # 640 x 426
    assert tuple(embedder.feature_map(scene, long_side=640).shape) == (1280, 13, 20)
    assert tuple(embedder.feature_map(scene.rotate(90, expand=True), long_side=448).shape) == (1280, 14, 9)


@pytest.mark.slow
def test_a_pixel_budget_maps_a_square_photo_smaller_and_leaves_a_wide_one_alone(embedder):
    square = photo("cup.webp").resize((1000, 1000), Image.Resampling.BICUBIC)
    budget = 640 * 480
    assert tuple(embedder.feature_map(square, long_side=640).shape) == (1280, 20, 20)
    # sqrt(640 x 480) = 554 px a side, rounded to a multiple of 32: 544 = 17 cells
    assert tuple(embedder.feature_map(square, long_side=640, max_pixels=budget).shape) == (1280, 17, 17)
    scene = photo("campus.jpg")  # 640 x 426: within the budget at 640 px
    assert tuple(embedder.feature_map(scene, long_side=640, max_pixels=budget).shape) == (1280, 13, 20)


class _MapSizes:
    """An embedder stand-in that records the maps asked for and answers a flat map."""

    device = torch.device("cpu")

    def __init__(self):
        self.asked = []
        self.precision = []

    def feature_map(self, image, *, long_side, max_pixels=None, bfloat16=False):
        self.asked.append((long_side, max_pixels))
        self.precision.append(bfloat16)
        return torch.ones(8, 4, 4)


def test_the_finder_gives_its_map_the_pixels_of_a_4_by_3_photo():
    model = _MapSizes()
    ObjectFinder().find(model, Image.new("RGB", (100, 100)))
    ObjectFinder(long_side=960).find(model, Image.new("RGB", (100, 100)))
    ObjectFinder(max_area=None).find(model, Image.new("RGB", (100, 100)))
    assert model.asked == [(640, 640 * 480), (960, 960 * 720), (640, None)]
    with pytest.raises(ValueError, match="max_area"):
        ObjectFinder(max_area=1.5)


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_runs_the_map_in_bfloat16_only_where_the_cpu_does_it_natively(monkeypatch, native):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    model = _MapSizes()
    for precision in ("auto", "float32", "bfloat16"):
        ObjectFinder(map_precision=precision).find(model, Image.new("RGB", (100, 100)))
    assert model.precision == [native, False, True]
    assert not bfloat16_is_fast("cuda")  # autocast here is the CPU's; a GPU keeps float32
    with pytest.raises(ValueError, match="map_precision"):
        ObjectFinder(map_precision="half")


@pytest.mark.slow
def test_a_bfloat16_map_sees_what_the_float32_one_sees_and_finds_the_same_box(embedder):
    scene, truth = pasted(photo("campus.jpg"), photo("hammer1.webp"), x=0.55, y=0.45, width=0.3, angle=10)
    full = embedder.feature_map(scene, long_side=640)
    fast = embedder.feature_map(scene, long_side=640, bfloat16=True)
    assert fast.dtype == torch.float32 and fast.shape == full.shape
    assert not torch.equal(fast, full)  # it did run in bfloat16
    cells = torch.nn.functional.cosine_similarity(full.flatten(1), fast.flatten(1), dim=0)
    assert float(cells.median()) > 0.99 and float(cells.min()) > 0.9
    main = {
        precision: ObjectFinder(map_precision=precision).find(embedder, scene)[0]
        for precision in ("float32", "bfloat16")
    }
    assert main["bfloat16"].iou(main["float32"]) > 0.9 and main["bfloat16"].iou(truth) >= 0.5


@pytest.mark.slow
def test_feature_map_of_a_resnet():
    resnet = build_embedder(EmbedderConfig(backbone="resnet18", untrained=True, threads=2))
    assert tuple(resnet.feature_map(photo("campus.jpg"), long_side=640).shape) == (512, 13, 20)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hammer1.webp", "scissors1.webp", "cup.webp"])
def test_a_product_pasted_into_a_real_scene_is_the_main_box(embedder, name):
    scene, truth = pasted(photo("campus.jpg"), photo(name), x=0.55, y=0.45, width=0.3, angle=10)
    boxes = find_objects(embedder, scene)
    assert boxes[0].iou(truth) >= 0.5
    assert_inside_unit_square(boxes)


@pytest.mark.slow
def test_two_products_apart_give_two_boxes(embedder):
    scene, hammer = pasted(photo("campus.jpg"), photo("hammer1.webp"), x=0.05, y=0.5, width=0.3, angle=-8)
    scene, scissors = pasted(scene, photo("scissors1.webp"), x=0.6, y=0.4, width=0.3, angle=10)
    boxes = find_objects(embedder, scene)
    on_hammer = max(boxes, key=lambda box: box.iou(hammer))
    on_scissors = max(boxes, key=lambda box: box.iou(scissors))
    assert on_hammer is not on_scissors
    assert on_hammer.iou(hammer) >= 0.5 and on_scissors.iou(scissors) >= 0.5


@pytest.mark.slow
def test_a_product_shot_gives_one_box_around_the_product(embedder):
    boxes = find_objects(embedder, photo("hammer2.webp"))  # a hammer on a plain grey-white backdrop
    assert len(shown(boxes)) == 1
    assert shown(boxes)[0].iou(HAMMER2) >= 0.5
    assert len(boxes) > 1  # its head and handle are still there to be ranked, as parts


@pytest.mark.slow
def test_two_products_on_a_plain_backdrop_give_two_boxes_and_no_box_inside_another(embedder):
    canvas = Image.new("RGB", (1024, 768), "white")
    scene, hammer = pasted(canvas, photo("hammer1.webp"), x=0.04, y=0.26, width=0.41, angle=0)
    scene, scissors = pasted(scene, photo("scissors1.webp"), x=0.59, y=0.33, width=0.35, angle=0)
    things = shown(find_objects(embedder, scene))
    assert len(things) == 2
    on_hammer = max(things, key=lambda box: box.iou(hammer))
    on_scissors = max(things, key=lambda box: box.iou(scissors))
    assert on_hammer is not on_scissors
    assert on_hammer.iou(hammer) >= 0.5 and on_scissors.iou(scissors) >= 0.5
    assert not any(share_inside(a, b) >= 0.7 for a in things for b in things if a is not b)


@pytest.mark.slow
def test_a_photo_filled_by_one_product_gives_the_whole_photo(embedder):
    boxes = find_objects(embedder, photo("multimeter1.webp"))
    assert boxes[0].iou(WHOLE) >= 0.8


@pytest.mark.slow
@pytest.mark.parametrize("max_objects", [1, 2, 5])
def test_max_objects_and_unit_square_on_a_real_scene(embedder, max_objects):
    boxes = find_objects(embedder, photo("box_in_scene.png"), max_objects=max_objects)
    assert 1 <= len(boxes) <= max_objects
    assert boxes == sorted(boxes, key=lambda box: -box.score)
    assert_inside_unit_square(boxes)


@pytest.mark.slow
def test_embed_with_objects_gives_query_vectors_in_one_batch(embedder):
    scene = photo("box_in_scene.png")
    boxes = find_objects(embedder, scene)
    assert len(boxes) + 1 > embedder.batch_size
    calls = []
    hook = embedder.model.register_forward_hook(lambda module, inputs, output: calls.append(len(output)))
    try:
        whole, vectors = embed_with_objects(embedder, scene, boxes)
    finally:
        hook.remove()
    assert calls == [len(boxes) + 1]  # one forward pass for the boxes and the whole photo
    assert vectors.shape == (len(boxes), embedder.dim)
    assert float(whole @ embedder.embed_one(scene)) > 0.9999
    crop = crop_fraction(scene, boxes[0].crop)
    assert float(vectors[0] @ embedder.embed_one(crop)) > 0.9999


@pytest.mark.slow
def test_each_pasted_products_box_embeds_closest_to_its_own_photo(embedder, catalog_vectors):
    scene, hammer = pasted(photo("campus.jpg"), photo("hammer1.webp"), x=0.05, y=0.5, width=0.3, angle=-8)
    scene, cup = pasted(scene, photo("cup.webp"), x=0.6, y=0.4, width=0.3, angle=10)
    boxes = find_objects(embedder, scene)
    whole, vectors = embed_with_objects(embedder, scene, boxes)
    for truth, name in ((hammer, "hammer1.webp"), (cup, "cup.webp")):
        row = max(range(len(boxes)), key=lambda i: boxes[i].iou(truth))
        assert CATALOG[int(np.argmax(catalog_vectors @ vectors[row]))] == name
    # Best evidence over boxes and the whole photo puts one of the two first.
    best = np.maximum(catalog_vectors @ whole, (catalog_vectors @ vectors.T).max(axis=1))
    assert CATALOG[int(np.argmax(best))] in {"hammer1.webp", "cup.webp"}
