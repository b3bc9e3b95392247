"""The things found in a shopper's photo, on the page in headless Chromium: boxes over the preview,
the main one pre-selected as the crop without a second search, picking another by pointer or keyboard,
"Other things in your photo", a phone-width run, the page without JavaScript and a shared link.

The photo is a real scene: two catalog photos pasted into tests/photos/box_in_scene.png (OpenCV's), as
tests/search/test_object_search.py builds it, searched against SHOP_CATALOG with the real model.
"""

import math
import time

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC

from tests.browser.shop_helpers import (
    api_searches,
    card_names,
    page_params,
    search_photo,
    search_settled,
    wait,
)
from tests.search.test_object_search import on, scene_with

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Where the two catalog photos go in the 1024x768 scene: (x, y, width) in pixels.
PLACEMENTS = {"hammer1.webp": (40, 60, 330), "cup.webp": (620, 430, 330)}
PRODUCT = {"hammer1.webp": "Claw hammer", "cup.webp": "Coffee cup"}
SEARCH_DELAY_S = 0.35  # search.js waits this long after a change before it searches

READ_DOTS = """
const layer = document.getElementById('object-layer').getBoundingClientRect();
return [...document.querySelectorAll('#object-layer .thing-dot')].map(dot => {
  const r = dot.getBoundingClientRect();
  return {label: dot.getAttribute('aria-label'), crop: dot.dataset.box,
          marked: dot.classList.contains('is-marked'), pressed: dot.getAttribute('aria-pressed'),
          width: r.width, height: r.height, visible: dot.checkVisibility(),
          x: r.left + r.width / 2, y: r.top + r.height / 2,
          on: [(r.left + r.width / 2 - layer.left) / layer.width,
               (r.top + r.height / 2 - layer.top) / layer.height],
          reach: [r.width / 2 / layer.width, r.height / 2 / layer.height]};
});
"""
READ_ROWS = """
return [...document.querySelectorAll('#other-objects .thing-row')].map(row => ({
  name: row.querySelector('.thing-row__name').textContent,
  hits: [...row.querySelectorAll('.card__name, .thing-row__links a')].map(e => e.textContent),
}));
"""


@pytest.fixture
def scene(tmp_path, photo_bytes):
    """The scene as a JPEG file, and each pasted photo's true box (fractions of the scene)."""
    data, truth = scene_with(photo_bytes, PLACEMENTS)
    path = tmp_path / "scene.jpg"
    path.write_bytes(data)
    return path, truth


def dots(browser) -> list[dict]:
    found = browser.execute_script(READ_DOTS)
    for dot in found:
        dot["box"] = tuple(float(value) for value in dot["crop"].split(","))
    return found


def rows(browser) -> list[dict]:
    return browser.execute_script(READ_ROWS)


def product_under(box, truth) -> str | None:
    """The product whose pasted photo the box lies on (as test_object_search judges it), if any."""
    return next((PRODUCT[name] for name, true_box in truth.items() if on(box, true_box)), None)


def other_thing(found: list[dict], truth) -> tuple[int, str]:
    """The number of a thing on the product that the main thing (thing 1) is not on, and that product."""
    main = product_under(found[0]["box"], truth)
    for number, dot in enumerate(found, start=1):
        product = product_under(dot["box"], truth)
        if product not in (None, main):
            return number, product
    raise AssertionError(f"no thing on the other product: {found}")


def dot_element(browser, number: int):
    return browser.find_element(By.CSS_SELECTOR, f"#object-layer .thing-dot[aria-label^='Thing {number} ']")


def check_things_over_the_preview(browser, truth) -> list[dict]:
    """Boxes are drawn, one per product at least, the first (main) one is the crop, not yet searched."""
    found = dots(browser)
    assert [dot["label"] for dot in found] == [
        f"Thing {n} in your photo: search it" for n in range(1, len(found) + 1)
    ]
    assert {product_under(dot["box"], truth) for dot in found} >= set(PRODUCT.values()), found
    assert all(dot["visible"] and dot["width"] >= 44 and dot["height"] >= 44 for dot in found), found
    # Every dot can be tapped: none lies on another, however close the things are. Each lies on its own
    # thing (or touches it, when smaller things fill it), and not on a smaller thing inside it (the outer
    # thing's dot would then name the inner one).
    for number, dot in enumerate(found):
        for other in found[number + 1 :]:
            assert math.hypot(dot["x"] - other["x"], dot["y"] - other["y"]) >= 43.5, found
        x, y, w, h = dot["box"]
        (dx, dy), (rx, ry) = dot["on"], dot["reach"]
        assert x - rx <= dx <= x + w + rx and y - ry <= dy <= y + h + ry, dot
        for other in found:
            ox, oy, ow, oh = other["box"]
            smaller_inside = ow * oh < w * h and ox >= x and oy >= y and ox + ow <= x + w and oy + oh <= y + h
            on_it = ox <= dot["on"][0] <= ox + ow and oy <= dot["on"][1] <= oy + oh
            assert not (smaller_inside and on_it), (dot, other)
    outlines = browser.find_elements(By.CSS_SELECTOR, "#object-layer .thing-outline")
    assert len(outlines) == len(found)
    # The main thing is pre-selected as the crop box, and the results are still the whole photo's.
    assert [dot["marked"] for dot in found] == [True] + [False] * (len(found) - 1)
    assert all(dot["pressed"] == "false" for dot in found)
    assert browser.find_element(By.ID, "id_crop").get_attribute("value") == found[0]["crop"]
    assert "Thing 1" in browser.find_element(By.ID, "crop-readout").text
    return found


def check_no_second_search(browser) -> None:
    time.sleep(SEARCH_DELAY_S * 3)  # what a change would have started by now
    assert api_searches(browser) == 1
    assert "crop" not in page_params(browser)


def test_things_in_the_photo_are_boxed_preselected_and_searched_one_by_one(shop_page, scene, screenshot):
    browser = shop_page
    path, truth = scene

    search_photo(browser, path)
    found = check_things_over_the_preview(browser, truth)
    check_no_second_search(browser)
    scope = browser.find_element(By.ID, "results-scope").text
    assert scope == f"Best matches for your whole photo and the {len(found)} things found in it."
    assert set(card_names(browser)[:2]) == set(PRODUCT.values())  # the combined ranking: both lead

    # "Other things in your photo": every thing but the main one, each with its own hits.
    assert browser.find_element(By.ID, "other-objects-title").is_displayed()
    shown = rows(browser)
    assert [row["name"] for row in shown] == [f"Thing {n}" for n in range(2, len(found) + 1)]
    main = product_under(found[0]["box"], truth)
    other, other_name = other_thing(found, truth)
    assert shown[other - 2]["hits"][0] == other_name
    assert all(len(row["hits"]) == 4 for row in shown)  # SEARCH_OBJECT_RESULTS
    screenshot("desktop-things")

    # Tapping another thing searches it as the crop; the crop lands in the shareable page URL.
    dot_element(browser, other).click()
    wait(browser).until(lambda b: page_params(b).get("crop") == found[other - 1]["crop"])
    wait(browser).until(search_settled)
    assert api_searches(browser) == 2
    assert card_names(browser)[0] == other_name
    assert browser.find_element(By.ID, "id_crop").get_attribute("value") == found[other - 1]["crop"]
    pressed = [dot["pressed"] == "true" for dot in dots(browser)]
    assert pressed == [n == other for n in range(1, len(found) + 1)]
    assert browser.find_element(By.ID, "results-scope").text.startswith(f"Matches for thing {other} (")
    assert "Thing 1" in [row["name"] for row in rows(browser)]  # the main thing now has a row
    screenshot("desktop-thing-picked")

    # Keyboard: from the crop box, Tab reaches thing 1's button; Enter searches it alone.
    box = browser.find_element(By.ID, "crop-box")
    browser.execute_script("arguments[0].focus()", box)
    ActionChains(browser).send_keys(Keys.TAB).perform()
    focused = browser.switch_to.active_element
    assert focused.get_attribute("aria-label") == "Thing 1 in your photo: search it"
    focused.send_keys(Keys.ENTER)
    wait(browser).until(lambda b: page_params(b).get("crop") == found[0]["crop"])
    wait(browser).until(search_settled)
    assert card_names(browser)[0] == main


def test_things_on_a_phone(shop_page, scene, screenshot):
    browser = shop_page
    path, truth = scene
    browser.set_window_size(390, 844)
    browser.get(browser.current_url)  # load at phone width: the filters fold away
    fold = browser.find_element(By.ID, "filters-fold")
    assert fold.get_property("open") is False
    assert not browser.find_element(By.ID, "id_category").is_displayed()

    # The photo is searched as soon as it is chosen, and the page scrolls down to the results.
    search_photo(browser, path)
    found = check_things_over_the_preview(browser, truth)
    results_top = "return document.getElementById('results').getBoundingClientRect().top"
    wait(browser).until(lambda b: abs(b.execute_script(results_top)) < 5)
    assert browser.execute_script("return window.scrollY") > 300
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"page is {overflow}px wider than a 390px phone screen"
    check_no_second_search(browser)
    assert rows(browser)
    screenshot("phone-things")

    # A tap on the other product's dot searches it and brings its results back into view.
    other, other_name = other_thing(found, truth)
    browser.execute_script("window.scrollTo(0, 0)")
    dot_element(browser, other).click()
    wait(browser).until(lambda b: page_params(b).get("crop") == found[other - 1]["crop"])
    wait(browser).until(search_settled)
    assert card_names(browser)[0] == other_name
    wait(browser).until(lambda b: abs(b.execute_script(results_top)) < 5)

    # The folded filters open with a tap on their summary.
    browser.execute_script("window.scrollTo(0, 0)")
    browser.find_element(By.CSS_SELECTOR, "#filters-fold > summary").click()
    assert browser.find_element(By.ID, "id_category").is_displayed()
    screenshot("phone-thing-picked")


@pytest.fixture
def scene_url(scene, live_server, settings) -> str:
    """The scene at a URL the search may fetch (the live server's media)."""
    settings.SEARCH_URL_ALLOWED_HOSTS = [live_server.url.split("//", 1)[1]]
    (settings.MEDIA_ROOT / "shared-scene.jpg").write_bytes(scene[0].read_bytes())
    return f"{live_server.url}/media/shared-scene.jpg"


@pytest.mark.parametrize("browser_javascript", [False])
def test_without_javascript_the_other_things_have_rows(shop_page, scene, scene_url, screenshot):
    browser = shop_page
    truth = scene[1]
    browser.find_element(By.ID, "id_url").send_keys(scene_url)
    browser.find_element(By.ID, "search-button").click()

    wait(browser).until(EC.visibility_of_element_located((By.ID, "other-objects")))
    assert set(card_names(browser)[:2]) == set(PRODUCT.values())
    assert browser.find_element(By.ID, "results-scope").text.startswith("Best matches for your whole photo")
    shown = rows(browser)
    assert shown and shown[0]["name"] == "Thing 2"
    # The product that is not the main thing (the first found; the page carries what was found) leads a row.
    objects = browser.execute_script("return JSON.parse(document.querySelector('#photo-objects').text)")
    boxes = [tuple(found["box"][key] for key in "xywh") for found in objects]
    things = [box for box in boxes if box[2] * box[3] < 0.9]  # not the whole photo
    main = product_under(things[0], truth)
    assert main in PRODUCT.values()
    other = next(name for name in PRODUCT.values() if name != main)
    row = next(n for n, row in enumerate(shown) if row["hits"][0] == other)
    screenshot("no-js-things")

    # Each row links to a search of just that thing (the photo came from a URL, so it can be sent again).
    browser.find_elements(By.CSS_SELECTOR, ".thing-row__search")[row].click()
    wait(browser).until(lambda b: "crop" in page_params(b))
    assert card_names(browser)[0] == other
    crop = tuple(float(value) for value in page_params(browser)["crop"].split(","))
    assert product_under(crop, truth) == other
    scope = browser.find_element(By.ID, "results-scope").text
    assert scope == "Matches for the part of your photo inside the box."


def test_a_shared_link_shows_the_things_the_server_found(
    shop_page, scene, scene_url, live_server, screenshot
):
    browser = shop_page
    truth = scene[1]
    browser.get(f"{live_server.url}/?url={scene_url}")
    preview_width = "return document.getElementById('preview-img').naturalWidth"
    wait(browser).until(lambda b: b.execute_script(preview_width))
    found = check_things_over_the_preview(browser, truth)
    assert api_searches(browser) == 0  # the server searched; the page only drew its answer
    shown = rows(browser)
    assert len(shown) == len(found) - 1
    assert browser.find_elements(By.CSS_SELECTOR, "#other-objects .card")  # the script's rows, with cards

    dot_element(browser, 2).click()
    wait(browser).until(lambda b: page_params(b).get("crop") == found[1]["crop"])
    assert page_params(browser)["url"] == scene_url
    assert browser.find_element(By.ID, "share-link").get_attribute("href") == browser.current_url
    wait(browser).until(search_settled)
    screenshot("shared-link")
