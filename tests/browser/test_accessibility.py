"""axe-core on every shopper view and the admin extras, at a phone's and a desktop's width: any
violation of WCAG 2 A/AA or axe's best practices fails the test (tests/browser/axe.py).

The phone is emulated as Chromium's device mode does it (390x844 CSS px, 3x pixels, touch), so the
page shows what a phone shows: the camera button, folded filters, the results below the photo.
"""

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from tests.browser.axe import assert_accessible
from tests.browser.shop_helpers import choose_photo, search_photo, search_settled, wait
from tests.browser.test_shop_objects import PLACEMENTS
from tests.chromium import page_errors
from tests.search.test_object_search import scene_with

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENS = {"phone": (390, 844), "desktop": (1280, 900)}
DOTS = "#object-layer .thing-dot"


@pytest.fixture(params=list(SCREENS))
def screen(request, browser) -> str:
    """The browser as a phone or a desktop (before the test opens its first page)."""
    width, height = SCREENS[request.param]
    if request.param == "phone":
        metrics = {"width": width, "height": height, "deviceScaleFactor": 3, "mobile": True}
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        browser.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
    else:
        browser.set_window_size(width, height)
    return request.param


@pytest.fixture
def site(browser, live_server, serve_media, screen):
    """Opens a path of the live server at the screen's size; returns the browser."""

    def open_path(path: str):
        browser.get(live_server.url + path)
        return browser

    return open_path


# Elements that reach past the screen's right edge (a phone then zooms the whole page out).
TOO_WIDE = """
const width = arguments[0];
const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
  + [...el.classList].map((c) => "." + c).join("");
return [...document.querySelectorAll("body *")]
  .filter((el) => el.getBoundingClientRect().right > width + 0.5 && el.checkVisibility())
  .map(name).slice(0, 10);
"""


def check(browser, screen: str) -> None:
    """The page fits the screen's width, and axe finds nothing."""
    width = SCREENS[screen][0]
    inner = browser.execute_script("return window.innerWidth")
    assert inner == width, (
        f"the page is {inner}px wide on a {width}px {screen}: {browser.execute_script(TOO_WIDE, width)}"
    )
    assert_accessible(browser)


@pytest.fixture
def scene(tmp_path, photo_bytes):
    """A photo with two catalog products in a cluttered scene (as test_shop_objects builds it)."""
    data, _truth = scene_with(photo_bytes, PLACEMENTS)
    path = tmp_path / "scene.jpg"
    path.write_bytes(data)
    return path


# --- the shopper's pages -------------------------------------------------------------------------


def test_shop_page_before_a_search(site, shop_catalog, screen):
    browser = site("/")
    assert browser.find_element(By.ID, "id_image")
    if screen == "phone":  # a phone offers its camera (a label on the accent colour)
        assert browser.find_element(By.CSS_SELECTOR, ".picker--camera .picker__label").is_displayed()
    check(browser, screen)


def test_results_with_the_crop_editor_and_the_things_found(site, shop_catalog, scene, screen):
    browser = site("/")
    search_photo(browser, scene)
    wait(browser).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, DOTS)) >= 2)
    assert browser.find_element(By.CSS_SELECTOR, "#result-grid .card__score").is_displayed()
    assert browser.find_element(By.ID, "other-objects").is_displayed()
    check(browser, screen)

    # Another thing picked: its dot pressed, the crop box on it, new results and rows.
    browser.execute_script("window.scrollTo(0, 0)")
    browser.find_elements(By.CSS_SELECTOR, DOTS)[1].click()
    wait(browser).until(lambda b: b.find_elements(By.CSS_SELECTOR, DOTS + "[aria-pressed=true]"))
    wait(browser).until(search_settled)
    browser.execute_script("document.getElementById('crop-box').focus()")
    check(browser, screen)


def test_a_shared_search_link(site, shop_catalog, scene, live_server, screen):
    settings.SEARCH_URL_ALLOWED_HOSTS = [live_server.url.split("//", 1)[1]]
    (settings.MEDIA_ROOT / "shared-scene.jpg").write_bytes(scene.read_bytes())
    browser = site(f"/?url={live_server.url}/media/shared-scene.jpg")
    wait(browser).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, DOTS)) >= 2)
    assert browser.find_element(By.ID, "share-link").is_displayed()
    check(browser, screen)


@pytest.fixture
def without_page_scripts(browser):
    """Pages run none of their scripts (inline or files), as in a browser without JavaScript; call
    the returned function to switch scripts back on (for axe) once the page under test is shown."""
    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    return lambda: browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})


def test_results_without_javascript(site, without_page_scripts, shop_catalog, photo_path, screen):
    browser = site("/")
    assert "has-js" not in browser.find_element(By.TAG_NAME, "html").get_attribute("class")
    browser.find_element(By.ID, "id_image").send_keys(str(photo_path("box_in_scene.png")))
    browser.find_element(By.ID, "search-button").click()
    wait(browser).until(EC.visibility_of_element_located((By.ID, "results")))
    assert "has-js" not in browser.find_element(By.TAG_NAME, "html").get_attribute("class")
    without_page_scripts()  # for axe; the page's own scripts do not run again
    check(browser, screen)


def test_error_states_of_the_shop_page(site, shop_catalog, tmp_path, screen):
    # A reload of a search with an uploaded photo: the page says to choose it again.
    browser = site("/?photo=upload&crop=0.1,0.1,0.5,0.5")
    assert browser.find_element(By.ID, "reload-notice").is_displayed()
    check(browser, screen)

    # A file that is not a photo: no preview, the server's message.
    fake = tmp_path / "not-a-photo.jpg"
    fake.write_text("this is a shopping list, not a photo\n")
    choose_photo(browser, fake)
    wait(browser).until(EC.visibility_of_element_located((By.ID, "search-error")))
    wait(browser).until(search_settled)
    check(browser, screen)


def test_nothing_found_on_an_empty_shop(site, photo_path, screen):
    browser = site("/")
    assert browser.find_element(By.CSS_SELECTOR, ".notice--warning").is_displayed()  # the index is empty
    search_photo(browser, photo_path("cup.webp"))
    assert browser.find_element(By.ID, "empty-state").is_displayed()
    check(browser, screen)


def test_product_page(site, shop_catalog, screen):
    browser = site(shop_catalog["HAM-1"].get_absolute_url())
    assert browser.find_element(By.CSS_SELECTOR, ".product__name").text == "Claw hammer"
    assert browser.find_elements(By.CSS_SELECTOR, ".results .card")
    check(browser, screen)


def test_page_not_found(site, screen):
    browser = site("/products/999999/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Page not found"
    # Chromium logs the page's own 404 as a failed load: expected here, so it does not fail the test.
    logged = page_errors(browser)
    assert all("/products/999999/ - Failed to load resource" in message for message in logged), logged
    check(browser, screen)


# --- the admin extras ------------------------------------------------------------------------------


@pytest.fixture
def admin_site(site, live_server, browser):
    """`site`, logged in as a superuser (the session cookie of a forced login, no login form)."""
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("merchandiser", "m@example.com", "x"))
    site("/admin/login/")
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    browser.add_cookie({"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "path": "/"})
    return site


def _import_job_path(shop_catalog) -> str:
    from catalog.models import ImportJob

    job = ImportJob.objects.create(
        status="running",
        total=4,
        done=2,
        failed=1,
        errors=[{"row": 3, "reason": "price 'abc' is not a number"}],
    )
    return f"/admin/catalog/product/import/{job.pk}/"


ADMIN_PAGES = {
    "index": lambda catalog: "/admin/",
    "dashboard": lambda catalog: "/admin/search/indexbuild/dashboard/",
    "product-list": lambda catalog: "/admin/catalog/product/",
    "product-change": lambda catalog: f"/admin/catalog/product/{catalog['HAM-1'].pk}/change/",
    "photo-search": lambda catalog: f"/admin/catalog/product/{catalog['HAM-1'].pk}/photo-search/",
    "import": lambda catalog: "/admin/catalog/product/import/",
    "import-job": _import_job_path,
    "duplicates": lambda catalog: "/admin/catalog/product/duplicates/",
    "relevance": lambda catalog: reverse("admin:search_relevance"),
    "projections": lambda catalog: reverse("admin:search_projections"),
    "feedback": lambda catalog: reverse("admin:search_searchfeedback_changelist"),
}


@pytest.mark.parametrize("page", list(ADMIN_PAGES))
def test_admin_extras(admin_site, shop_catalog, page, screen):
    browser = admin_site(ADMIN_PAGES[page](shop_catalog))
    assert browser.find_element(By.ID, "content")
    check(browser, screen)
