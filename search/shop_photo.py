"""What the shop page says about, and reserves for, the shopper's photo before its script runs: which
found objects are things in it, where each lies, the preview's box, where its crop box stands, the
line under the preview and the line over the results. Each is exactly what static/js/shop/ would put
there (the function named in its docstring), so on a shared search the script's words and boxes
replace the same words and boxes, and nothing moves (tests/browser/test_shop_stable.py).
"""

import math

from search.services.query import ObjectMatch  # not re-exported by search.services
from search.uploads import Crop

# A found object this large is the whole photo, not a thing in it: no row, never the main thing.
# Same rule as coversPhoto() in static/js/shop/crop-rect.js.
WHOLE_PHOTO_AREA = 0.9
MIN_SIDE = 0.05  # a crop's smallest side: MIN_SIDE in crop-rect.js
# The preview's largest height: .crop-stage__img's max-height in static/css/shop.css.
PREVIEW_MAX_HEIGHT_PX = 340


def covers_photo(box: Crop) -> bool:
    return box[2] * box[3] >= WHOLE_PHOTO_AREA


def place_in_photo(box: Crop) -> str:
    """Where a box lies, in words ("top left", "in the middle"); describePlace() in crop-rect.js."""

    def third(centre: float, low: str, mid: str, high: str) -> str:
        return low if centre < 1 / 3 else high if centre > 2 / 3 else mid

    column = third(box[0] + box[2] / 2, "left", "centre", "right")
    row = third(box[1] + box[3] / 2, "top", "middle", "bottom")
    return "in the middle" if (row, column) == ("middle", "centre") else f"{row} {column}"


def photo_box(size: tuple[int, int] | None) -> dict | None:
    """The box the shopper's photo will fill in the preview (a shared search: the page arrives before
    the photo), so nothing below it moves when the photo arrives: its size and, for CSS, the widest it
    is shown (where the height limit binds)."""
    if not size or not size[0] or not size[1]:
        return None
    width, height = size
    return {"width": width, "height": height, "widest": round(PREVIEW_MAX_HEIGHT_PX * width / height)}


def results_scope(crop: Crop | None, things: list[ObjectMatch]) -> str:
    """What the results grid shows: scopeText() in static/js/shop/objects.js."""
    if crop:
        return "Matches for the part of your photo inside the box."
    if not things:
        return "Matches for your whole photo."
    count = "thing" if len(things) == 1 else f"{len(things)} things"
    return f"Best matches for your whole photo and the {count} found in it."


def _percent(value: float) -> str:
    return f"{math.floor(value * 100 + 0.5)}%"  # Math.round, not round()'s half-to-even


def fit_rect(box: Crop) -> Crop:
    """fitRect() in crop-rect.js, with the same arithmetic (so the same numbers)."""
    x, y, w, h = (float(value) for value in box)  # plain floats (the finder's may be NumPy's)
    w, h = min(1.0, max(MIN_SIDE, w)), min(1.0, max(MIN_SIDE, h))
    return (min(1 - w, max(0.0, x)), min(1 - h, max(0.0, y)), w, h)


def preview_crop(crop: Crop | None, things: list[ObjectMatch]) -> Crop:
    """Where the crop box stands when a shared search opens: the main thing (pre-selected by objects.js)
    when things were found, else the link's crop, else the whole photo."""
    return fit_rect(things[0].box if things and not crop else crop or (0.0, 0.0, 1.0, 1.0))


def crop_box_style(crop: Crop | None, things: list[ObjectMatch]) -> str:
    """The crop box's place, as CropBox.render() in crop-box.js writes it."""
    x, y, w, h = preview_crop(crop, things)
    return f"left: {x * 100!r}%; top: {y * 100!r}%; width: {w * 100!r}%; height: {h * 100!r}%"


def crop_readout(crop: Crop | None, things: list[ObjectMatch]) -> str:
    """The line under the preview of a shared search: the main thing's note (select() in objects.js)
    when things were found, else the crop in words (describeCrop() in crop-rect.js)."""
    x, y, w, h = preview_crop(crop, things)
    if things and not crop:
        place = place_in_photo((x, y, w, h))
        return (
            f"Thing 1 ({place}) is marked. The results are for the whole photo and everything found in "
            "it: pick a thing, or move the box, to search just that."
        )
    if x < 0.001 and y < 0.001 and w > 0.999 and h > 0.999:
        return "Searching the whole photo."
    return (
        f"Searching {_percent(w)} × {_percent(h)} of the photo, {_percent(x)} from the left and "
        f"{_percent(y)} from the top."
    )
