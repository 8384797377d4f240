"""Every error, DRF's and Django's own included, is `{"success": false, "error_code", "error",
"details"?}` with the status of docs/design.md, "Errors"; one test per code."""

from __future__ import annotations

import pytest

from whatsapp import errors
from whatsapp.services import linking

CODE = "/api/v1/companies/alice/session/pairing-code/"

SERVICE_ERRORS = [
    (errors.ValidationFailed, 400),
    (errors.InvalidPhone, 400),
    (errors.NotAuthenticated, 401),
    (errors.PermissionDenied, 403),
    (errors.CompanyNotFound, 404),
    (errors.AlreadyConnected, 409),
    (errors.CredentialsConflict, 409),
    (errors.NotPairing, 409),
    (errors.NoCredentials, 409),
    (errors.RateLimited, 429),
    (errors.ConnectionClosed, 502),
    (errors.WhatsAppUnavailable, 503),
    (errors.WorkerUnavailable, 503),
    (errors.OperationTimeout, 504),
    (errors.InternalError, 500),
]


@pytest.mark.parametrize(
    ("error_class", "http_status"), SERVICE_ERRORS, ids=[cls.code for cls, _ in SERVICE_ERRORS]
)
def test_each_service_error_is_rendered_with_its_code(
    alice, as_alice, monkeypatch, error_class, http_status
):
    def fail(**kwargs):
        raise error_class(details={"why": "test"}, retry_after=42 if http_status == 429 else None)

    monkeypatch.setattr(linking, "pairing_code_request", fail)
    response = as_alice.post(CODE, {"phone_number": "+79001234567"}, format="json")
    assert response.status_code == http_status
    assert response.json() == {
        "success": False,
        "error_code": error_class.code,
        "error": error_class.default_message,
        "details": {"why": "test"},
        **({"retry_after": 42} if http_status == 429 else {}),
    }
    if http_status == 429:
        assert response["Retry-After"] == "42"


def test_unexpected_errors_are_500_and_reported_without_pii(alice, as_alice, monkeypatch):
    captured: list[BaseException] = []
    monkeypatch.setattr("whatsapp.errors.sentry_sdk.capture_exception", captured.append)

    def boom(**kwargs):
        raise RuntimeError("boom for +79001234567")

    monkeypatch.setattr(linking, "pairing_code_request", boom)
    response = as_alice.post(CODE, {"phone_number": "+79001234567"}, format="json")
    assert response.status_code == 500
    assert response.json() == {
        "success": False,
        "error_code": "INTERNAL_ERROR",
        "error": errors.InternalError.default_message,
    }
    assert [type(e) for e in captured] == [RuntimeError]


def test_sentry_events_are_scrubbed_of_phones():
    from whatsapp.privacy import sentry_before_send

    event = sentry_before_send({"exception": {"values": [{"value": "boom for +79001234567"}]}}, {})
    assert "79001234567" not in str(event)


def test_unknown_urls_under_the_api_are_json_404(as_alice, alice):
    response = as_alice.get("/api/v1/no/such/thing/")
    assert response.status_code == 404
    assert response.json()["error_code"] == "COMPANY_NOT_FOUND"
    assert response["Content-Type"] == "application/json"


def test_a_missing_trailing_slash_gets_a_hint(as_alice, alice):
    response = as_alice.post("/api/v1/companies/alice/session/start", {}, format="json")
    assert response.status_code == 404
    assert "/api/v1/companies/alice/session/start/" in response.json()["error"]


def test_unknown_urls_need_no_credentials_to_be_json(anonymous, db):
    response = anonymous.get("/api/v1/nope")
    assert response.status_code == 404 and response.json()["success"] is False


def test_wrong_method_is_405_validation_error(as_alice, alice):
    response = as_alice.put("/api/v1/companies/alice/session/", {}, format="json")
    assert response.status_code == 405
    assert response.json()["error_code"] == "VALIDATION_ERROR"
    assert "GET" in response["Allow"]


def test_bad_json_is_a_validation_error(as_alice, alice):
    response = as_alice.post(CODE, data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error_code"] == "VALIDATION_ERROR"


def test_a_non_json_body_is_415_validation_error(as_alice, alice):
    response = as_alice.post(CODE, data="phone_number=1", content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["error_code"] == "VALIDATION_ERROR"


def test_a_json_array_body_is_a_validation_error(as_alice, alice):
    response = as_alice.post(CODE, data="[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error_code"] == "VALIDATION_ERROR"
