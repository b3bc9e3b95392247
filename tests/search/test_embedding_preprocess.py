"""Preprocessing (resize + centre crop or square resize, normalisation) and the crop helper."""

import pytest
import torch
from PIL import Image

from search.embedding import Preprocessing, crop_fraction
from search.embedding.preprocess import IMAGENET_MEAN, IMAGENET_STD


def striped(size=(400, 200)) -> Image.Image:
    """Red left quarter, green middle, blue right quarter: shows what a crop keeps."""
    image = Image.new("RGB", size, (0, 255, 0))
    width, height = size
    image.paste((255, 0, 0), (0, 0, width // 4, height))
    image.paste((0, 0, 255), (width - width // 4, 0, width, height))
    return image


def test_centre_crop_gives_the_model_size_and_drops_the_sides():
    prep = Preprocessing(resize=256, size=224)
    fitted = prep.fit(striped())
    assert fitted.size == (224, 224)
    assert fitted.getpixel((0, 112)) == (0, 255, 0)  # the red quarter was cropped away
    assert fitted.getpixel((223, 112)) == (0, 255, 0)


def test_without_centre_crop_the_whole_image_is_squeezed_into_the_square():
    fitted = Preprocessing(resize=256, size=224, center_crop=False).fit(striped())
    assert fitted.size == (224, 224)
    assert fitted.getpixel((2, 112)) == (255, 0, 0)
    assert fitted.getpixel((221, 112)) == (0, 0, 255)


def test_centre_crop_resamples_like_a_full_resize_then_crop(photo_path):
    import numpy as np
    import torchvision.transforms.functional as TF

    from search.embedding import load_image

    prep = Preprocessing(resize=256, size=224)
    for name in ("hammer1.webp", "chair.webp", "box_in_scene.png", "apple.jpg"):
        image = load_image(photo_path(name), max_pixels=40_000_000)
        reference = TF.center_crop(TF.resize(image, 256), [224, 224])
        diff = np.abs(np.asarray(prep.fit(image), dtype=int) - np.asarray(reference, dtype=int))
        # Only the resampling box differs: rounding moves a few values (4 % at most on these
        # small photos, 0.05 % on 1 Mpx JPEGs) by one step.
        assert diff.max() <= 2 and (diff > 0).mean() < 0.1


def test_tensor_is_normalised_with_the_given_statistics():
    tensor = Preprocessing()(Image.new("RGB", (300, 300), (255, 0, 0)))
    assert tensor.shape == (3, 224, 224) and tensor.dtype == torch.float32
    expected = [(1 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], -IMAGENET_MEAN[1] / IMAGENET_STD[1]]
    assert tensor[0, 5, 5].item() == pytest.approx(expected[0], abs=1e-5)
    assert tensor[1, 5, 5].item() == pytest.approx(expected[1], abs=1e-5)


def test_tag_changes_with_every_setting_that_changes_pixels():
    tags = {
        Preprocessing(resize=256, size=224).tag,
        Preprocessing(resize=256, size=192).tag,
        Preprocessing(resize=288, size=224).tag,
        Preprocessing(resize=256, size=224, center_crop=False).tag,
    }
    assert len(tags) == 4


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="SEARCH_RESIZE"):
        Preprocessing(resize=200, size=224)


def test_crop_fraction_cuts_the_named_region():
    cropped = crop_fraction(striped(), (0.0, 0.0, 0.25, 1.0))
    assert cropped.size == (100, 200)
    assert cropped.getcolors() == [(100 * 200, (255, 0, 0))]


def test_crop_fraction_tolerates_browser_rounding_at_the_edge():
    assert crop_fraction(striped(), (0.75, 0.5, 0.2500000001, 0.5)).size == (100, 100)


def test_tiny_crop_keeps_at_least_one_pixel():
    assert crop_fraction(striped(), (0.5, 0.5, 0.0001, 0.0001)).size == (1, 1)


@pytest.mark.parametrize(
    ("crop", "message"),
    [
        ((0.5, 0.5, 0.6, 0.1), "outside the image"),
        ((0.1, 0.1, 0, 0.5), "greater than 0"),
        ((-0.1, 0, 0.5, 0.5), "x and y"),
        ((1.0, 0, 0.5, 0.5), "x and y"),
        ((0, 0, 1.5, 0.5), "at most 1"),
        ((0, 0, 0.5), "four numbers"),
        (("a", 0, 0.5, 0.5), "four numbers"),
        ((float("nan"), 0, 0.5, 0.5), "four numbers"),
    ],
)
def test_bad_crop_is_refused_with_a_clear_message(crop, message):
    with pytest.raises(ValueError, match=message):
        crop_fraction(striped(), crop)
