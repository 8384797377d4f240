"""The OpenAPI schema documents every endpoint; Swagger UI is served from local assets."""

from __future__ import annotations

from django.contrib.staticfiles import finders

EXPECTED = {
    ("/api/v1/companies/", "get"),
    ("/api/v1/companies/", "post"),
    ("/api/v1/companies/{slug}/", "get"),
    ("/api/v1/companies/{slug}/session/", "get"),
    ("/api/v1/companies/{slug}/session/start/", "post"),
    ("/api/v1/companies/{slug}/session/qr/", "get"),
    ("/api/v1/companies/{slug}/session/pairing-code/", "post"),
    ("/api/v1/companies/{slug}/session/reconnect/", "post"),
    ("/api/v1/companies/{slug}/session/logout/", "post"),
    ("/api/v1/companies/{slug}/session/health/", "get"),
    ("/api/v1/companies/{slug}/credentials/", "get"),
    ("/api/v1/companies/{slug}/credentials/", "delete"),
    ("/api/v1/companies/{slug}/attempts/", "get"),
    ("/api/v1/companies/{slug}/pairing-links/", "post"),
    ("/api/v1/health/", "get"),
    ("/api/v1/sandbox/phone/link/", "post"),
    ("/api/v1/sandbox/phone/unlink/", "post"),
}


def _schema(client) -> dict:
    response = client.get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def test_every_endpoint_is_documented_with_its_errors(anonymous, db):
    schema = _schema(anonymous)
    operations = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert operations == EXPECTED
    for path, method in EXPECTED:
        operation = schema["paths"][path][method]
        responses = operation["responses"]
        success = [code for code in responses if code.startswith("2")]
        assert success, (path, method)
        if path != "/api/v1/health/":
            assert responses["401"]["content"]["application/json"]["schema"]["$ref"].endswith(
                "/Error"
            )
            assert "429" in responses
        if "{slug}" in path:
            assert "COMPANY_NOT_FOUND" in responses["404"]["description"]


def test_the_error_body_is_documented(anonymous, db):
    error = _schema(anonymous)["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"success", "error_code", "error"}
    assert "details" in error["properties"]


def test_the_pairing_code_response_matches_the_spec(anonymous, db):
    schemas = _schema(anonymous)["components"]["schemas"]
    assert set(schemas["PairingCodeResponse"]["properties"]) == {
        "success",
        "pairing_code",
        "phone_number",
        "expires_at",
        "expires_in",
        "attempt_id",
    }


def test_api_key_auth_is_documented(anonymous, db):
    schemes = _schema(anonymous)["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {**schemes["ApiKey"], "type": "http", "scheme": "bearer"}


def test_swagger_ui_uses_local_assets(anonymous, db):
    response = anonymous.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/api/v1/schema/" in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")


def test_the_schema_generates_without_warnings(tmp_path, db):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yaml"))
    assert (tmp_path / "s.yaml").read_text().startswith("openapi: 3")
