"""Fixtures of the browser tests. Chromium itself (`browser`, `browser_javascript`, `screenshot`) is
set up in tests/conftest.py, since tests outside this folder drive it too (tests/test_serving.py)."""

import pytest


@pytest.fixture
def serve_media(settings) -> None:
    """Makes the live server serve uploaded photos (the site leaves that to the web server)."""
    settings.ROOT_URLCONF = "tests.browser.urls"


@pytest.fixture
def shop_page(browser, live_server, shop_catalog, serve_media):
    browser.get(f"{live_server.url}/")
    return browser
