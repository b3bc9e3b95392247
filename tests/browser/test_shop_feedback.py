"""Shopper feedback in headless Chromium: "This one" on a result card is sent to the JSON API without
leaving the page, the button becomes pressed, the thanks is read out, and the verdict is recorded."""

import pytest
from selenium.webdriver.common.by import By

from search.models import SearchFeedback
from tests.browser.shop_helpers import card_names, search_photo, wait

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Requests the page made to an API address ending so (api_searches() counts the feedback's too).
REQUESTS_TO = (
    "return performance.getEntriesByType('resource').filter(e => e.name.endsWith(arguments[0])).length"
)
READ_BUTTONS = """
return [...arguments[0].querySelectorAll('.feedback__button')].map(button => {
  const r = button.getBoundingClientRect();
  return {pressed: button.getAttribute('aria-pressed'), width: r.width, height: r.height};
})"""


def test_this_one_on_a_result_is_recorded_and_said_politely(shop_page, photo_path, screenshot):
    browser = shop_page
    search_photo(browser, photo_path("hammer2.webp"))
    assert card_names(browser)[0] == "Claw hammer"
    page_url, searches = browser.current_url, browser.execute_script(REQUESTS_TO, "/api/v1/search/")
    card = browser.find_element(By.CSS_SELECTOR, "#result-grid .card")
    this_one = card.find_element(By.CSS_SELECTOR, ".feedback__button--yes")
    assert this_one.accessible_name == "This one: Claw hammer"
    assert all(b["width"] >= 44 and b["height"] >= 44 for b in browser.execute_script(READ_BUTTONS, card))
    live = browser.find_element(By.ID, "feedback-status")
    assert live.get_attribute("aria-live") == "polite" and live.get_attribute("role") == "status"

    this_one.click()

    wait(browser).until(lambda b: "Thanks" in live.text)
    assert live.text == "Thanks! You told us “Claw hammer” is what you were looking for."
    assert [b["pressed"] for b in browser.execute_script(READ_BUTTONS, card)] == ["true", "false"]
    assert browser.current_url == page_url  # the page stayed, and sent no new search
    assert browser.execute_script(REQUESTS_TO, "/api/v1/search/") == searches
    wait(browser).until(lambda b: b.execute_script(REQUESTS_TO, "/api/v1/search/feedback/") == 1)
    row = SearchFeedback.objects.get()
    assert row.product.name == "Claw hammer" and row.verdict == "this_one" and row.rank == 1
    screenshot("thanks")

    # Changing one's mind changes the same verdict.
    card.find_element(By.CSS_SELECTOR, ".feedback__button--no").click()
    wait(browser).until(lambda b: "is not what you were looking for" in live.text)
    assert [b["pressed"] for b in browser.execute_script(READ_BUTTONS, card)] == ["false", "true"]
    assert SearchFeedback.objects.get().verdict == "not_this"
