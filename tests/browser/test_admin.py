"""The catalog admin in headless Chromium: log in, the index dashboard, the product list with
thumbnails and index status, a product's photos and similar products, and a bulk import from files.
Screenshots go to test-artifacts/ for a person to look at."""

import zipfile

import pytest
from django.contrib.auth import get_user_model
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT_SECONDS = 90  # the admin runs the real model on a shared 2-core machine
PASSWORD = "browser-test-password"  # noqa: S105 - a throwaway test account


@pytest.fixture
def logged_in(browser, live_server, serve_media):
    get_user_model().objects.create_superuser("merchandiser", "m@example.com", PASSWORD)
    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("merchandiser")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, WAIT_SECONDS).until(EC.presence_of_element_located((By.ID, "shop-tools")))
    return browser


def loaded_images(browser, selector: str) -> list[int]:
    """Natural widths of the images matched: 0 means the browser could not load the file."""
    script = "return Array.from(document.querySelectorAll(arguments[0])).map(img => img.naturalWidth);"
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: all(img.get_property("complete") for img in b.find_elements(By.CSS_SELECTOR, selector))
    )
    return browser.execute_script(script, selector)


def test_dashboard_and_product_list(logged_in, live_server, shop_catalog, screenshot):
    browser = logged_in
    browser.find_element(By.LINK_TEXT, "Search index dashboard").click()
    WebDriverWait(browser, WAIT_SECONDS).until(EC.presence_of_element_located((By.ID, "model-facts")))
    assert browser.find_element(By.ID, "model-name").text == "efficientnet_lite0"
    assert "FALLBACK MODEL" in browser.find_element(By.ID, "model-fallback").text
    assert browser.find_element(By.ID, "count-embedded").text == "7"
    screenshot("dashboard")

    browser.find_element(By.ID, "rebuild-now").click()
    WebDriverWait(browser, WAIT_SECONDS).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, ".messagelist"))
    )
    assert "Rebuild queued" in browser.find_element(By.CSS_SELECTOR, ".messagelist").text

    browser.get(f"{live_server.url}/admin/catalog/product/")
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == len(shop_catalog)
    widths = loaded_images(browser, "#result_list img.admin-extra-thumb")
    assert len(widths) == len(shop_catalog) and all(0 < width <= 128 for width in widths)
    statuses = {el.text for el in browser.find_elements(By.CSS_SELECTOR, ".admin-extra-status")}
    assert statuses == {"indexed"}
    screenshot("product-list")

    browser.find_element(By.LINK_TEXT, "Claw hammer").click()
    panel = WebDriverWait(browser, WAIT_SECONDS).until(
        EC.presence_of_element_located((By.ID, "similar-products"))
    )
    assert len(panel.find_elements(By.CSS_SELECTOR, "li")) >= 3
    assert all(width > 0 for width in loaded_images(browser, "#similar-products img"))
    screenshot("product-change")


def test_bulk_import_from_the_browser(logged_in, live_server, photo_path, tmp_path, screenshot):
    browser = logged_in
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(photo_path("cup.webp"), "cup.webp")
        zipped.write(photo_path("pan.webp"), "pan.webp")
        zipped.writestr("notes.jpg", b"not a photo")
    csv_file = tmp_path / "products.csv"
    csv_file.write_text(
        "sku,name,category,price,description,image\n"
        "CUP-1,Coffee cup,Kitchen,7.95,,cup.webp\n"
        "PAN-1,Frying pan,Kitchen,24,,pan.webp\n"
        "BAD-1,Notes,,1,,notes.jpg\n"
    )
    browser.get(f"{live_server.url}/admin/catalog/product/")
    browser.find_element(
        By.CSS_SELECTOR, ".object-tools a[href$='/product/import/']"
    ).click()  # upper-cased by CSS
    browser.find_element(By.NAME, "archive").send_keys(str(archive))
    browser.find_element(By.NAME, "csv_file").send_keys(str(csv_file))
    screenshot("import-form")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()

    WebDriverWait(browser, WAIT_SECONDS).until(
        EC.text_to_be_present_in_element((By.ID, "job-status"), "succeeded")
    )
    assert browser.find_element(By.ID, "job-created").text == "2"
    errors = browser.find_element(By.ID, "job-errors").text
    assert "4" in errors and "notes.jpg" in errors
    screenshot("import-job")


def test_import_status_needs_a_login(browser, live_server):
    browser.get(f"{live_server.url}/admin/catalog/product/import/1/status/")
    assert "/admin/login/" in browser.current_url


def test_job_page_follows_progress_live(logged_in, live_server, screenshot):
    """The page polls the JSON endpoint: counts change without a reload, the end reloads the page."""
    from catalog.models import ImportJob

    browser = logged_in
    job = ImportJob.objects.create(status="running", total=4, done=1)
    browser.get(f"{live_server.url}/admin/catalog/product/import/{job.pk}/")
    done = browser.find_element(By.CSS_SELECTOR, "[data-field='done']")
    assert done.text == "1"
    ImportJob.objects.filter(pk=job.pk).update(done=3)
    WebDriverWait(browser, WAIT_SECONDS).until(
        EC.text_to_be_present_in_element((By.CSS_SELECTOR, "[data-field='done']"), "3")
    )
    assert browser.find_element(By.CSS_SELECTOR, "progress").get_property("value") == 75
    assert not browser.find_element(By.ID, "job-errors").is_displayed()
    # A failure appears while the job still runs, without a reload.
    failure = [{"row": 2, "reason": "photo <b>x.jpg</b> is not an image"}]
    ImportJob.objects.filter(pk=job.pk).update(failed=1, errors=failure)
    WebDriverWait(browser, WAIT_SECONDS).until(EC.visibility_of_element_located((By.ID, "job-errors")))
    assert (
        "photo <b>x.jpg</b> is not an image" in browser.find_element(By.ID, "job-errors").text
    )  # text, not HTML
    assert browser.find_element(By.ID, "job-failed").text == "1"
    assert browser.find_element(By.ID, "job-status").text == "running"
    screenshot("import-running")
    errors = [{"row": 3, "reason": "price 'abc' is not a number"}]
    ImportJob.objects.filter(pk=job.pk).update(status="succeeded", done=4, created=3, failed=1, errors=errors)
    # The end reloads the page once, with the final counts rendered by the server.
    WebDriverWait(browser, WAIT_SECONDS).until(EC.presence_of_element_located((By.ID, "job-created")))
    assert "price 'abc' is not a number" in browser.find_element(By.ID, "job-errors").text


def test_near_duplicates_page(logged_in, live_server, photo_path, screenshot):
    from catalog.services import product_create, product_image_create

    for sku, photo in [("HAM-1", "hammer1.webp"), ("HAM-COPY", "hammer1.webp"), ("CUP-1", "cup.webp")]:
        product = product_create(sku=sku, name=sku, price="1.00", currency="EUR", category=None)
        product_image_create(product=product, file=photo_path(photo).read_bytes(), original_name=photo)
    browser = logged_in
    browser.find_element(By.LINK_TEXT, "Near-duplicate photos").click()
    groups = browser.find_elements(By.CSS_SELECTOR, ".duplicate-group")
    assert len(groups) == 1
    assert {el.text for el in groups[0].find_elements(By.CSS_SELECTOR, ".sku")} == {"HAM-1", "HAM-COPY"}
    assert all(width > 0 for width in loaded_images(browser, ".duplicate-group img"))
    screenshot("duplicates")


def test_dashboard_follows_a_running_build(logged_in, live_server, screenshot):
    from django.utils import timezone

    from search.models import IndexBuild

    browser = logged_in
    build = IndexBuild.objects.create(status="running", total=40, done=10, started_at=timezone.now())
    browser.get(f"{live_server.url}/admin/search/indexbuild/dashboard/")
    panel = browser.find_element(By.ID, "running-build")
    assert panel.is_displayed()
    assert browser.find_element(By.CSS_SELECTOR, "#running-build progress").get_property("value") == 25
    IndexBuild.objects.filter(pk=build.pk).update(done=30)
    WebDriverWait(browser, WAIT_SECONDS).until(
        EC.text_to_be_present_in_element((By.CSS_SELECTOR, "[data-field='running.done']"), "30")
    )
    assert browser.find_element(By.CSS_SELECTOR, "#running-build progress").get_property("value") == 75
    screenshot("dashboard-building")
    IndexBuild.objects.filter(pk=build.pk).update(
        status="failed", error="disk full", finished_at=timezone.now()
    )
    WebDriverWait(browser, WAIT_SECONDS).until(EC.visibility_of_element_located((By.ID, "last-error")))
    assert "disk full" in browser.find_element(By.ID, "last-error").text
    assert not browser.find_element(By.ID, "running-build").is_displayed()


def test_flag_a_picture(logged_in, live_server, photo_path, screenshot):
    browser = logged_in
    browser.get(f"{live_server.url}/admin/catalog/flaggedimage/add/")
    browser.find_element(By.NAME, "upload").send_keys(str(photo_path("scissors1.webp")))
    browser.find_element(By.NAME, "reason").send_keys("Copyrighted studio shot")
    browser.find_element(By.NAME, "_save").click()
    WebDriverWait(browser, WAIT_SECONDS).until(EC.presence_of_element_located((By.ID, "result_list")))
    assert "Copyrighted studio shot" in browser.find_element(By.ID, "result_list").text
    assert all(width > 0 for width in loaded_images(browser, "#result_list img.admin-extra-thumb"))
    screenshot("flagged-list")
