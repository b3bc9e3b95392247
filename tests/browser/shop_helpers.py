"""Reading and driving the shop-by-photo page in the browser tests (test_shop_page, test_shop_objects)."""

from urllib.parse import parse_qs, urlsplit

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

WAIT_SECONDS = 90  # a search runs the model on a shared 2-core machine


def wait(browser) -> WebDriverWait:
    return WebDriverWait(browser, WAIT_SECONDS)


def card_names(browser) -> list[str]:
    """The names in the results, in order: the grid, then the folded "less alike" ones (not the rows of
    other things)."""
    # Read in one script call: the grid may be re-rendered between two WebDriver calls.
    return browser.execute_script(
        "return [...document.querySelectorAll('#result-grid .card__name, #more-grid .card__name')]"
        ".map(e => e.textContent)"
    )


def page_params(browser) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(browser.current_url).query).items()}


def search_settled(browser) -> bool:
    results = browser.find_element(By.ID, "results")
    return results.get_attribute("aria-busy") == "false" and not browser.find_element(
        By.ID, "search-button"
    ).get_property("disabled")


def choose_photo(browser, path) -> None:
    """Chooses a photo in the picker; the page starts searching it at once."""
    browser.find_element(By.ID, "id_image").send_keys(str(path))
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "file-name"), path.name))
    wait(browser).until(EC.visibility_of_element_located((By.ID, "preview")))


def search_photo(browser, path) -> None:
    """Chooses a photo and waits for the search it starts (it is under way once the name shows)."""
    choose_photo(browser, path)
    wait(browser).until(search_settled)


def run_search(browser) -> None:
    """Sends the form (the Search button) and waits for that search."""
    browser.find_element(By.ID, "search-button").click()
    wait(browser).until(
        lambda b: b.find_element(By.ID, "results").get_attribute("aria-busy") == "true" or search_settled(b)
    )
    wait(browser).until(search_settled)


def api_searches(browser) -> int:
    """How many searches the page has sent to the API since it loaded."""
    return browser.execute_script(
        "return performance.getEntriesByType('resource')"
        ".filter(e => e.name.includes('/api/v1/search/')).length"
    )
