"""Headless Chromium for browser tests (Debian's chromium + chromedriver), shared by every browser test.

`browser` is a Selenium WebDriver (Chromium missing: skip locally, fail in CI); a test whose pages log
a script error, a console.error or a failed load (see `page_errors`) fails at teardown;
`screenshot(name)` saves test-artifacts/<test>-<name>.png;
`serve_media` makes the live server serve uploaded photos (the site leaves that to the web server);
`shop_page` is the shop-by-photo page on the live server with SHOP_CATALOG indexed.
"""

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
]


# What Chromium logs at SEVERE that is no fault of a page: the site has no favicon, and a search the
# API refuses (a 4xx, which the page shows as its error message) is logged as a failed resource.
EXPECTED_BROWSER_ERRORS = re.compile(
    r"/favicon\.ico - "
    r"|/api/v1/search/ - Failed to load resource: the server responded with a status of 4\d\d "
)


def page_errors(driver) -> list[str]:
    """SEVERE entries of the browser log since it was last read: script errors, console.error, and
    resources that failed to load (a missing static file or module import shows up here), minus
    EXPECTED_BROWSER_ERRORS. Needs the goog:loggingPrefs capability `browser` sets."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and not EXPECTED_BROWSER_ERRORS.search(entry["message"])
    ]


def _require_chromium() -> None:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        message = f"{', '.join(missing)} not installed (apt-get install chromium chromium-driver)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def browser_javascript() -> bool:
    """Whether `browser` runs scripts; a test checks the no-JavaScript page with
    @pytest.mark.parametrize("browser_javascript", [False])."""
    return True


@pytest.fixture
def browser(tmp_path: Path, browser_javascript: bool) -> Iterator["webdriver.Chrome"]:  # noqa: F821
    _require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    # A fresh profile per test: no cache, cookies or crash-restore prompts from an earlier run.
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    # Keeps the page's console and failed loads for page_errors() (checked after every test).
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if not browser_javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
        # After the test, so a script error anywhere in it fails it (as an error at teardown).
        problems = page_errors(driver)
        if problems:
            pytest.fail("the browser logged errors:\n" + "\n".join(problems))
    finally:
        driver.quit()


@pytest.fixture
def screenshot(browser, request) -> Callable[[str], Path]:
    """Saves a full-page PNG to test-artifacts/ (git-ignored) for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    prefix = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)

    def _take(name: str) -> Path:
        # Grow the window to the page's height for the shot, so results below the fold are in it.
        size = browser.get_window_size()
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(size["width"], max(size["height"], height))
        browser.execute_script("window.scrollTo(0, 0)")
        path = ARTIFACTS / f"{prefix}-{name}.png"
        browser.save_screenshot(str(path))
        browser.set_window_size(size["width"], size["height"])
        return path

    return _take


@pytest.fixture
def serve_media(settings) -> None:
    settings.ROOT_URLCONF = "tests.browser.urls"


@pytest.fixture
def shop_page(browser, live_server, shop_catalog, serve_media):
    browser.get(f"{live_server.url}/")
    return browser
