"""The OpenAPI 3 schema is complete and valid, and the interactive docs work offline (sidecar)."""

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

pytestmark = pytest.mark.django_db

OPERATIONS = {
    ("/api/v1/search/", "post"),
    ("/api/v1/search/feedback/", "post"),
    ("/api/v1/products/", "get"),
    ("/api/v1/products/", "post"),
    ("/api/v1/products/{id}/", "get"),
    ("/api/v1/products/{id}/", "patch"),
    ("/api/v1/products/{id}/", "delete"),
    ("/api/v1/products/{id}/similar/", "get"),
    ("/api/v1/products/{id}/images/", "post"),
    ("/api/v1/products/{id}/images/{image_id}/", "delete"),
    ("/api/v1/categories/", "get"),
    ("/api/v1/index/status/", "get"),
}


def test_schema_generates_without_warnings_and_validates(tmp_path):
    target = tmp_path / "schema.yaml"
    # --fail-on-warn: an undocumented view or an untyped field fails this test.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    validate_schema(schema)
    found = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert found == OPERATIONS


def test_schema_documents_requests_responses_and_errors():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    search = schema["paths"]["/api/v1/search/"]["post"]
    assert set(search["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert {"200", "400", "413", "415", "429", "503"} <= set(search["responses"])
    components = schema["components"]["schemas"]
    # COMPONENT_SPLIT_REQUEST names request components "...Request".
    expected = {"SearchUploadInputRequest", "SearchJsonInputRequest", "SearchResultOutput", "ErrorOutput"}
    assert expected <= set(components)
    assert set(components["ModelInfoOutput"]["properties"]) == {
        "name", "fingerprint", "pretrained", "fallback", "untrained", "weights_source"
    }  # fmt: skip
    assert "query_id" in components["SearchResultOutput"]["required"]
    assert "query_id" in components["ObjectOutput"]["properties"]
    feedback = schema["paths"]["/api/v1/search/feedback/"]["post"]
    assert {"200", "201", "400", "415", "429"} <= set(feedback["responses"])
    assert set(components["FeedbackInputRequest"]["properties"]) == {
        "query_id", "product", "verdict", "rank", "score"
    }  # fmt: skip
    create = schema["paths"]["/api/v1/products/"]["post"]
    assert "401" in create["responses"] and create["security"]


def test_schema_endpoint_serves_openapi(client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")


def test_docs_page_renders_with_local_assets(client):
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html and "/api/v1/schema/" in html
    # Assets come from drf-spectacular-sidecar's static files, not a CDN.
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
    bundle = "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
    assert bundle in html
    assert finders.find(bundle) is not None  # the file ships with the app: collectstatic serves it


def test_redoc_page_renders(client):
    response = client.get("/api/v1/redoc/")
    assert response.status_code == 200
    assert "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js" in response.content.decode()
