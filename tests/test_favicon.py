"""The site's icon: linked from every page and answered at /favicon.ico, where browsers look whatever
a page links to (it was a 404). The production shape (WhiteNoise, hashed names) is in test_serving."""

import pytest
from django.contrib.staticfiles import finders
from django.templatetags.static import static
from PIL import Image

pytestmark = pytest.mark.django_db


def test_favicon_ico_sends_browsers_to_the_static_icon(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 302
    assert response["Location"] == static("favicon.ico")


def test_the_icon_is_a_real_multi_size_ico():
    with Image.open(finders.find("favicon.ico")) as icon:
        assert icon.format == "ICO"
        assert {(16, 16), (32, 32)} <= icon.info["sizes"]


@pytest.mark.parametrize("path", ["/", "/admin/login/"])
def test_pages_link_the_icon(client, path):
    page = client.get(path).content.decode()

    assert f'<link rel="icon" href="{static("favicon.ico")}"' in page
