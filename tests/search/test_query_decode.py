"""How much of a query JPEG is decoded: a whole-photo search, object finding's detail and a crop each
decode what they need and no more (JPEG DCT scaling), since a 12-MP phone photo decoded in full costs
more than the model."""

import io
import math

import numpy as np
import pytest
from PIL import Image

from catalog.imaging import DRAFT_MARGIN
from search.uploads import decode_query_image


def jpeg(width: int, height: int) -> bytes:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(height // 8, width // 8, 3), dtype=np.uint8)
    picture = Image.fromarray(pixels).resize((width, height), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=85)
    return out.getvalue()


def test_object_finding_decodes_a_phone_photo_at_half_scale_not_in_full():
    # The shorter side at least the detail asked for (1024) and no more than one DCT scale step above it.
    assert decode_query_image(jpeg(4032, 3024), detail_size=1024).size == (2016, 1512)


def test_object_finding_never_gets_less_than_its_detail():
    # Half of 1600 x 1200 would be 600 px on the shorter side, under 1024: decoded in full.
    assert decode_query_image(jpeg(1600, 1200), detail_size=1024).size == (1600, 1200)
    assert min(decode_query_image(jpeg(3000, 2200), detail_size=1024).size) >= 1024


def test_the_whole_photo_keeps_its_margin_and_a_crop_its_full_resolution(settings):
    data = jpeg(4032, 3024)
    whole = decode_query_image(data)
    assert min(whole.size) >= math.ceil(settings.SEARCH_RESIZE * DRAFT_MARGIN)
    assert min(whole.size) < 3024  # reduced: the catalog decodes its photos the same way
    assert decode_query_image(data, crop=(0.1, 0.1, 0.5, 0.5)).size == (4032, 3024)


@pytest.mark.parametrize("detail", [512, 1024, 1500])
def test_detail_is_a_floor_for_any_size(detail):
    assert min(decode_query_image(jpeg(4032, 3024), detail_size=detail).size) >= detail
