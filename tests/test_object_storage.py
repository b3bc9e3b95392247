"""Shared nothing but the engines: the catalog and search paths with every file in a storage that is
not this machine's disk — Django's InMemoryStorage, and django-storages' S3 backend talking to moto's
S3 server on 127.0.0.1. Upload a photo → embedded → indexed (and the build shipped) → searchable →
thumbnail served → deleted, and nothing of it ever lands under MEDIA_ROOT or CATALOG_IMPORT_DIR."""

import io
from pathlib import Path

import pytest
import requests
from django.core.files.storage import storages
from PIL import Image
from rest_framework.test import APIClient

from catalog.api.serializers import THUMBNAIL_SIZE
from catalog.models import ProductImage
from search.models import ImageEmbedding
from search.services.index_shipping import forget_follow_schedule, published_version
from shop_search.object_storage import s3_storages
from tests.factories import ProductFactory, UserFactory
from tests.object_storage import REGION, bucket_keys
from tests.search.shop_helpers import build_now
from tests.search.test_api_permissions import CATALOG_PERMISSIONS

pytestmark = pytest.mark.django_db
IN_MEMORY = {"BACKEND": "django.core.files.storage.InMemoryStorage"}


@pytest.fixture(params=["in-memory", "s3"])
def remote_storages(request, settings):
    """Every storage alias off the local disk; SEARCH_INDEX_STORAGE ships builds through "index"."""
    if request.param == "in-memory":
        aliases = {"default": IN_MEMORY, "imports": IN_MEMORY, "index": IN_MEMORY}
        bucket = None
    else:
        endpoint, name, options = request.getfixturevalue("s3_bucket")
        aliases = s3_storages(bucket=name, endpoint_url=endpoint, region=REGION, **options)
        bucket = (endpoint, name)
    settings.STORAGES = {**settings.STORAGES, **aliases}
    settings.SEARCH_INDEX_STORAGE = "index"
    forget_follow_schedule()
    yield bucket
    forget_follow_schedule()


@pytest.fixture
def token_api():
    user = UserFactory(
        username="storage", permissions=[f"catalog.{p}" for p in CATALOG_PERMISSIONS], token=True
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {user.auth_token.key}")
    return client


def upload(name: str, data: bytes):
    file = io.BytesIO(data)
    file.name = name
    return file


def fetched(client: APIClient, url: str) -> bytes:
    """The bytes a browser gets for a media URL: Django's media view on this site, or the object store."""
    if url.startswith("http://testserver/"):
        response = client.get(url.removeprefix("http://testserver"))
        assert response.status_code == 200, url
        return b"".join(response.streaming_content) if response.streaming else response.content
    response = requests.get(url, timeout=10)  # a signed URL of the bucket, on 127.0.0.1
    assert response.status_code == 200, (url, response.text[:200])
    return response.content


def test_photo_to_search_to_thumbnail_to_delete_without_the_local_disk(
    remote_storages, token_api, settings, photo_bytes, django_capture_on_commit_callbacks
):
    media, index = storages["default"], storages["index"]
    ProductFactory(sku="CHAIR", photos=["chair.webp"])
    cup = ProductFactory(sku="CUP", photos=[])

    with django_capture_on_commit_callbacks(execute=True):
        response = token_api.post(
            f"/api/v1/products/{cup.pk}/images/", {"image": upload("cup.webp", photo_bytes("cup.webp"))}
        )
    assert response.status_code == 201, response.content
    image = ProductImage.objects.get(pk=response.json()["image"]["id"])
    assert media.exists(image.image.name)
    # The embedding task read the photo back from the storage.
    assert ImageEmbedding.objects.filter(image=image, status="done").exists()

    build = build_now()
    assert build.status == "succeeded", build.error
    assert published_version(index) == build.version  # shipped for the other machines

    settings.SEARCH_KEEP_QUERY_PHOTOS_DAYS = 1  # the query photo is kept, in the media storage too
    found = APIClient().post("/api/v1/search/", {"image": upload("q.webp", photo_bytes("cup.webp")), "k": 2})
    assert found.status_code == 200, found.content
    [day] = media.listdir("queries")[0]
    assert len(media.listdir(f"queries/{day}")[1]) == 1
    hit = found.json()["results"][0]
    assert hit["product"]["sku"] == "CUP"

    thumbnail = fetched(APIClient(), hit["matched_image"]["thumbnail_url"])
    with Image.open(io.BytesIO(thumbnail)) as picture:
        assert picture.format == "JPEG" and max(picture.size) == THUMBNAIL_SIZE
    assert media.exists(f"thumbs/{THUMBNAIL_SIZE}/{image.sha256}.jpg")
    assert fetched(APIClient(), hit["matched_image"]["url"]) == photo_bytes("cup.webp")

    with django_capture_on_commit_callbacks(execute=True):
        assert token_api.delete(f"/api/v1/products/{cup.pk}/images/{image.pk}/").status_code == 204
    assert not media.exists(image.image.name)

    for local in (settings.MEDIA_ROOT, Path(settings.CATALOG_IMPORT_DIR) / "uploads"):
        assert not Path(local).exists(), f"a file was written to the local disk under {local}"
    if remote_storages is not None:  # S3: the objects really are in the bucket, under their prefixes
        keys = bucket_keys(*remote_storages)
        assert f"media/thumbs/{THUMBNAIL_SIZE}/{image.sha256}.jpg" in keys
        assert f"index/builds/{build.version}/manifest.json" in keys and "index/current.json" in keys
        assert f"media/{image.image.name}" not in keys


def test_admin_import_zip_goes_through_the_imports_storage(
    remote_storages, settings, django_capture_on_commit_callbacks
):
    """The admin's import: the uploaded ZIP is stored in STORAGES["imports"] by the web process and read
    back from there by the worker; its photos land in the media storage."""
    import zipfile

    from django.core.files.base import ContentFile

    from catalog.models import ImportJob
    from catalog.tasks import import_job_create
    from tests.factories import photo_data

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("kitchen/cup.webp", photo_data("cup.webp"))
    with django_capture_on_commit_callbacks(execute=True):
        job = import_job_create(archive=ContentFile(archive.getvalue(), name="photos.zip"))

    job = ImportJob.objects.get(pk=job.pk)
    assert job.status == "succeeded" and job.created == 1, job.error
    image = ProductImage.objects.get(product__sku="kitchen-cup")
    assert storages["default"].exists(image.image.name)
    assert not job.archive  # the ZIP was deleted from the imports storage once imported
    assert not Path(settings.MEDIA_ROOT).exists()
    assert not (Path(settings.CATALOG_IMPORT_DIR) / "uploads").exists()
