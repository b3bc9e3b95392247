"""Headless Chromium (Debian's chromium + chromedriver) for the tests that drive a browser; the
fixtures (`browser`, `browser_javascript`, `screenshot`) are in tests/conftest.py.

A test whose pages log a script error, a console.error or a failed load (see `page_errors`) fails.
"""

import re
from pathlib import Path

import pytest

from tests.conftest import IN_CI

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
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


def require_chromium() -> None:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        message = f"{', '.join(missing)} not installed (apt-get install chromium chromium-driver)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def chromium_start(profile: Path, *, javascript: bool = True):
    """A Selenium WebDriver on a fresh profile (no cache, cookies or crash-restore prompts)."""
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={profile}")
    # Keeps the page's console and failed loads for page_errors() (checked after every test).
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    return driver


def full_page_screenshot(driver, path: Path) -> Path:
    """A PNG of the whole page: the window grows to the page's height for the shot."""
    size = driver.get_window_size()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(size["width"], max(size["height"], height))
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(path))
    driver.set_window_size(size["width"], size["height"])
    return path
