"""Bad input found in review: always a clear error code, never a 500 or an HTML page."""

from __future__ import annotations

import pytest

from tests.whatsapp.api.helpers import client_with_key

pytestmark = pytest.mark.django_db

CODE_URL = "/api/v1/companies/alice/session/pairing-code/"


def test_deeply_nested_json_is_a_validation_error(as_alice):
    response = as_alice.post(CODE_URL, data="[" * 100000, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error_code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize("flag", ["yes", "on", "1", 1, None, "true"])
def test_replace_existing_takes_only_real_booleans(as_alice, flag):
    response = as_alice.post(
        CODE_URL, {"phone_number": "+79001234567", "replace_existing": flag}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "VALIDATION_ERROR" and "replace_existing" in body["details"]


@pytest.mark.parametrize("method", ["post", "delete", "put", "patch"])
def test_writes_to_unknown_or_slashless_urls_get_the_json_404(alice, alice_key, method):
    client = client_with_key(alice_key)
    client.enforce_csrf_checks = True
    response = getattr(client, method)("/api/v1/companies/alice/session/start")
    assert response.status_code == 404
    assert response.json()["error_code"] == "COMPANY_NOT_FOUND"
    assert "trailing slash" in response.json()["error"]


def test_sandbox_routes_do_not_exist_for_anyone_outside_sandbox_mode(settings, db):
    settings.WHATSAPP_BACKEND = "neonize"
    for client in (client_with_key(None), client_with_key("wps_not-a-key")):
        response = client.post(
            "/api/v1/sandbox/phone/link/", {"phone_number": "+79001234567"}, format="json"
        )
        assert response.status_code == 404
        assert response.json()["error_code"] == "COMPANY_NOT_FOUND"
