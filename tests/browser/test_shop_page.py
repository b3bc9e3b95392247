"""The shop-by-photo page in headless Chromium: upload, filter, crop, bad file, phone width.

Runs against the live server with a real catalog, the real model (the offline fallback in tests)
and the JSON API the page's JavaScript calls.
"""

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select

from tests.browser.shop_helpers import (
    card_names,
    page_params,
    run_search,
    search_photo,
    search_settled,
    wait,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_shopper_searches_filters_crops_and_sees_errors(shop_page, screenshot, photo_path, tmp_path):
    browser = shop_page
    assert "fallback model" in browser.find_element(By.CSS_SELECTOR, ".notices").text
    screenshot("01-start")

    # Choosing the photo searches it: no button to press.
    search_photo(browser, photo_path("hammer2.webp"))
    wait(browser).until(EC.visibility_of_element_located((By.ID, "crop-box")))
    names = card_names(browser)
    assert names[0] == "Claw hammer"
    assert len(names) == 7
    first = browser.find_element(By.CSS_SELECTOR, "#result-grid .card")
    assert first.find_element(By.CSS_SELECTOR, ".card__price").text == "14.90 EUR"
    assert first.find_element(By.CSS_SELECTOR, ".card__score").text.endswith("% match")
    assert browser.execute_script("return document.querySelector('#result-grid img').naturalWidth") > 0
    assert page_params(browser)["photo"] == "upload"
    screenshot("03-results")

    # Filtering re-runs the search with the photo kept in memory (no new upload).
    Select(browser.find_element(By.ID, "id_category")).select_by_visible_text("Kitchen")
    wait(browser).until(lambda b: set(card_names(b)) == {"Coffee cup", "Frying pan"})
    wait(browser).until(search_settled)
    assert page_params(browser)["category"] == "kitchen"
    screenshot("04-category")
    Select(browser.find_element(By.ID, "id_category")).select_by_visible_text("All categories")
    wait(browser).until(lambda b: len(card_names(b)) == 7)

    # The main thing found in the photo is pre-selected as the crop: back to the whole photo first.
    browser.find_element(By.ID, "crop-reset").click()
    assert browser.find_element(By.ID, "id_crop").get_attribute("value") == ""

    # Keyboard: Shift+arrows shrink the crop box, arrows move it; the crop lands in the page URL.
    box = browser.find_element(By.ID, "crop-box")
    browser.execute_script("arguments[0].focus()", box)
    keys = ActionChains(browser).key_down(Keys.SHIFT)
    for _ in range(10):
        keys.send_keys(Keys.ARROW_LEFT, Keys.ARROW_UP)
    keys.key_up(Keys.SHIFT)
    for _ in range(5):
        keys.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_DOWN)
    keys.perform()
    wait(browser).until(lambda b: page_params(b).get("crop") == "0.1,0.1,0.8,0.8")
    wait(browser).until(search_settled)
    assert len(card_names(browser)) == 7
    assert "80% × 80%" in browser.find_element(By.ID, "crop-readout").text

    # Pointer: dragging the box moves the crop (the box cannot leave the photo).
    ActionChains(browser).drag_and_drop_by_offset(box, -400, -400).perform()
    wait(browser).until(lambda b: page_params(b).get("crop") == "0,0,0.8,0.8")
    wait(browser).until(search_settled)
    assert card_names(browser)
    screenshot("05-cropped")

    # A reload cannot re-send the uploaded file: the page says so and keeps the crop.
    browser.refresh()
    notice = wait(browser).until(EC.visibility_of_element_located((By.ID, "reload-notice")))
    assert "choose the photo again" in notice.text
    assert browser.find_element(By.ID, "id_crop").get_attribute("value") == "0,0,0.8,0.8"

    # A text file named .jpg: the server's message is shown, no stale results.
    fake = tmp_path / "not-a-photo.jpg"
    fake.write_text("this is a shopping list, not a photo\n")
    search_photo(browser, fake)
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "crop-readout"), "cannot show a preview"))
    error = wait(browser).until(EC.visibility_of_element_located((By.ID, "search-error")))
    assert "not a picture in a supported format" in error.text
    assert not browser.find_element(By.ID, "results").is_displayed()
    screenshot("06-error")


def test_page_fits_a_phone_screen(shop_page, screenshot, photo_path):
    browser = shop_page
    browser.set_window_size(375, 812)
    search_photo(browser, photo_path("cup.webp"))

    assert card_names(browser)[0] == "Coffee cup"
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"page is {overflow}px wider than a 375px phone screen"
    screenshot("phone-results")


def test_product_page_from_a_result_card(shop_page, screenshot, photo_path):
    browser = shop_page
    search_photo(browser, photo_path("plier1.webp"))
    browser.find_element(By.CSS_SELECTOR, "#result-grid .card__link").click()

    wait(browser).until(EC.title_contains("Combination pliers"))
    assert browser.find_element(By.CSS_SELECTOR, ".product__price").text == "11.00 EUR"
    similar = browser.execute_script(
        "return [...document.querySelectorAll('.results .card__name')].map(e => e.textContent)"
    )
    assert len(similar) == 6 and "Combination pliers" not in similar
    screenshot("product")


def test_page_checks_the_photo_before_searching_and_keeps_the_crop_box_in_the_photo(
    browser, live_server, settings, photo_path
):
    # What the page decides alone, before any search: no photo, a photo over the limit; then the crop box.
    settings.SEARCH_QUERY_MAX_BYTES = 20_000
    browser.get(f"{live_server.url}/")
    browser.find_element(By.ID, "search-button").click()
    error = wait(browser).until(EC.visibility_of_element_located((By.ID, "search-error")))
    assert error.text == "Choose a photo or enter an image URL to search with."

    browser.find_element(By.ID, "id_image").send_keys(str(photo_path("box_in_scene.png")))  # 122 KB
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "search-error"), "photos can be at most"))
    assert not browser.find_element(By.ID, "preview").is_displayed()

    search_photo(browser, photo_path("cup.webp"))  # 16 KB, searched at once; this catalog is empty
    assert not error.is_displayed()
    assert browser.find_element(By.ID, "empty-state").is_displayed()
    crop = browser.find_element(By.ID, "id_crop")
    browser.find_element(By.ID, "crop-reset").click()
    assert crop.get_attribute("value") == ""
    assert browser.find_element(By.ID, "crop-readout").text == "Searching the whole photo."
    box = browser.find_element(By.ID, "crop-box")
    browser.execute_script("arguments[0].focus()", box)
    keys = ActionChains(browser).key_down(Keys.SHIFT)
    for _ in range(5):
        keys.send_keys(Keys.ARROW_LEFT)
    keys.key_up(Keys.SHIFT).perform()
    wait(browser).until(lambda b: crop.get_attribute("value") == "0,0,0.9,1")
    wait(browser).until(lambda b: page_params(b).get("crop") == "0,0,0.9,1")  # searched with it
    wait(browser).until(search_settled)


DISPATCH_PHOTO = """
const [url, kind, done] = arguments;
fetch(url).then(r => r.blob()).then(blob => {
  const data = new DataTransfer();
  data.items.add(new File([blob], kind + ".jpg", {type: blob.type}));
  const event = kind === "paste"
    ? new ClipboardEvent("paste", {clipboardData: data, bubbles: true})
    : new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true});
  (kind === "paste" ? document.body : document.getElementById("dropzone")).dispatchEvent(event);
  done(true);
});
"""


def test_photo_by_paste_drop_and_url_and_a_shared_link(shop_page, shop_catalog, live_server, settings):
    browser = shop_page
    settings.SEARCH_URL_ALLOWED_HOSTS = [live_server.url.split("//", 1)[1]]
    cup_url = live_server.url + shop_catalog["CUP-1"].images.first().image.url
    pan_url = live_server.url + shop_catalog["PAN-1"].images.first().image.url

    # A pasted or dropped photo is searched at once.
    browser.execute_async_script(DISPATCH_PHOTO, cup_url, "paste")
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "file-name"), "paste.jpg"))
    wait(browser).until(search_settled)
    assert card_names(browser)[0] == "Coffee cup"

    browser.execute_async_script(DISPATCH_PHOTO, pan_url, "drop")
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "file-name"), "drop.jpg"))
    wait(browser).until(search_settled)
    assert card_names(browser)[0] == "Frying pan"

    # An image URL: the page URL holds it, so the search can be shared and reloads with results.
    url_field = browser.find_element(By.ID, "id_url")
    url_field.send_keys(cup_url)
    run_search(browser)
    assert card_names(browser)[0] == "Coffee cup"
    assert page_params(browser)["url"] == cup_url
    browser.get(browser.current_url)
    wait(browser).until(lambda b: card_names(b) and card_names(b)[0] == "Coffee cup")
    assert browser.find_element(By.ID, "id_url").get_attribute("value") == cup_url
    assert browser.find_element(By.ID, "preview").is_displayed()


@pytest.mark.parametrize("browser_javascript", [False])
def test_without_javascript_the_form_still_searches(shop_page, screenshot, photo_path):
    browser = shop_page
    assert "has-js" not in browser.find_element(By.TAG_NAME, "html").get_attribute("class")
    browser.find_element(By.ID, "id_image").send_keys(str(photo_path("scissors1.webp")))
    Select(browser.find_element(By.ID, "id_category")).select_by_visible_text("Tools")
    browser.find_element(By.ID, "search-button").click()

    wait(browser).until(EC.visibility_of_element_located((By.ID, "results")))
    # The grid, then the weak hits folded under "less alike" (a <details>: it opens without a script).
    cards = browser.find_elements(By.CSS_SELECTOR, "#result-grid .card__name, #more-grid .card__name")
    names = [el.get_attribute("textContent") for el in cards]
    assert names[0] == "Paper scissors"
    assert set(names) == {"Paper scissors", "Claw hammer", "Combination pliers"}
    if browser.find_elements(By.CSS_SELECTOR, "#more-grid .card"):
        browser.find_element(By.ID, "more-results-summary").click()
        assert browser.find_element(By.CSS_SELECTOR, "#more-grid .card__name").is_displayed()
    assert Select(browser.find_element(By.ID, "id_category")).first_selected_option.text == "Tools"
    screenshot("no-js-results")
