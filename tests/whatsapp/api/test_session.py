"""The session endpoints against the sandbox and the in-process worker."""

from __future__ import annotations

import time

import pytest

from tests.helpers import ALICE_E164, ALICE_PHONE
from tests.whatsapp.api.helpers import link_by_code, wait_for_status
from whatsapp.models import PairingAttempt

pytestmark = pytest.mark.django_db(transaction=True)

CODE = "/api/v1/companies/alice/session/pairing-code/"


def test_session_shape(alice, as_alice):
    body = as_alice.get("/api/v1/companies/alice/session/").json()
    assert body["success"] is True
    assert body["status"] == "disconnected"
    assert body["qr"] is None and body["pairing_code"] is None


def test_start_is_accepted_and_idempotent(alice, as_alice, worker):
    first = as_alice.post("/api/v1/companies/alice/session/start/")
    assert first.status_code == 202
    assert first.json()["success"] is True
    assert first.json()["status"] in ("connecting", "qr_ready")
    again = as_alice.post("/api/v1/companies/alice/session/start/")
    assert again.status_code == 202
    assert PairingAttempt.objects.filter(company=alice).count() == 1


def test_qr_is_served_while_pairing(alice, as_alice, worker):
    as_alice.post("/api/v1/companies/alice/session/start/")
    wait_for_status(as_alice, "alice", "qr_ready")
    response = as_alice.get("/api/v1/companies/alice/session/qr/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"success", "qr", "image", "expires_at"}
    assert body["image"].startswith("data:image/png;base64,")
    assert body["qr"]


def test_qr_without_an_attempt_is_not_pairing(alice, as_alice):
    response = as_alice.get("/api/v1/companies/alice/session/qr/")
    assert response.status_code == 409
    assert response.json()["error_code"] == "NOT_PAIRING"


def test_pairing_code_shape(alice, as_alice, worker):
    response = as_alice.post(CODE, {"phone_number": ALICE_PHONE}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "success",
        "pairing_code",
        "phone_number",
        "expires_at",
        "expires_in",
        "attempt_id",
    }
    assert body["success"] is True
    assert len(body["pairing_code"]) == 9 and body["pairing_code"][4] == "-"
    assert body["phone_number"] == ALICE_E164
    assert body["expires_in"] > 0
    assert PairingAttempt.objects.get(pk=body["attempt_id"]).phone == ALICE_E164
    session = as_alice.get("/api/v1/companies/alice/session/").json()
    assert session["pairing_code"]["pairing_code"] == body["pairing_code"]


def test_a_repeat_for_the_same_phone_gets_the_same_code(alice, as_alice, worker):
    first = as_alice.post(CODE, {"phone_number": ALICE_PHONE}, format="json").json()
    again = as_alice.post(CODE, {"phone_number": "79001234567"}, format="json").json()
    assert again["pairing_code"] == first["pairing_code"]
    assert again["attempt_id"] == first["attempt_id"]


@pytest.mark.parametrize("phone", ["8 900 123 45 67", "12345", "+999 123 456 789", "call me"])
def test_it_rejects_invalid_phones(alice, as_alice, phone):
    response = as_alice.post(CODE, {"phone_number": phone}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "INVALID_PHONE"
    assert body["error"]


@pytest.mark.parametrize(
    "body", [{}, {"phone_number": ""}, {"phone_number": ALICE_PHONE, "replace_existing": "maybe"}]
)
def test_it_rejects_malformed_bodies(alice, as_alice, body):
    response = as_alice.post(CODE, body, format="json")
    assert response.status_code == 400
    assert response.json()["error_code"] == "VALIDATION_ERROR"
    assert response.json()["details"]


def test_connected_phone_is_already_connected(alice, as_alice, worker):
    link_by_code(as_alice, "alice")
    response = as_alice.post(CODE, {"phone_number": ALICE_PHONE}, format="json")
    assert response.status_code == 409
    assert response.json()["error_code"] == "ALREADY_CONNECTED"


def test_another_phone_conflicts_unless_replacing(alice, as_alice, worker):
    link_by_code(as_alice, "alice")
    response = as_alice.post(CODE, {"phone_number": "+1 415 555 2671"}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["error_code"] == "CREDENTIALS_CONFLICT"
    assert body["details"]["stored_phone"] == "+7900***4567"
    assert "79001234567" not in str(body)
    replaced = as_alice.post(
        CODE, {"phone_number": "+1 415 555 2671", "replace_existing": True}, format="json"
    )
    assert replaced.status_code == 200, replaced.json()
    assert replaced.json()["phone_number"] == "+14155552671"


def test_reconnect_without_credentials(alice, as_alice):
    response = as_alice.post("/api/v1/companies/alice/session/reconnect/")
    assert response.status_code == 409
    assert response.json()["error_code"] == "NO_CREDENTIALS"


def test_reconnect_with_credentials(alice, as_alice, worker):
    link_by_code(as_alice, "alice")
    response = as_alice.post("/api/v1/companies/alice/session/reconnect/")
    assert response.status_code == 202
    assert response.json()["status"] in ("reconnecting", "connected")
    wait_for_status(as_alice, "alice", "connected")


def test_logout_unlinks_and_deletes_credentials(alice, as_alice, worker):
    link_by_code(as_alice, "alice")
    response = as_alice.post("/api/v1/companies/alice/session/logout/")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["had_credentials"] is True
    assert body["unlinked_on_whatsapp"] is True
    assert body["session"]["status"] == "disconnected"
    assert as_alice.get("/api/v1/companies/alice/credentials/").json()["has_credentials"] is False


def test_logout_without_a_link(alice, as_alice):
    body = as_alice.post("/api/v1/companies/alice/session/logout/").json()
    assert body == {
        "success": True,
        "had_credentials": False,
        "unlinked_on_whatsapp": False,
        "session": body["session"],
    }


def test_health_of_a_connected_session(alice, as_alice, worker):
    link_by_code(as_alice, "alice")
    time.sleep(0.3)  # one heartbeat
    body = as_alice.get("/api/v1/companies/alice/session/health/").json()
    assert body["success"] is True
    assert body["connected"] is True and body["status"] == "connected"
    assert body["worker"] == worker.worker.worker_id
    assert body["lease_age_seconds"] >= 0
    assert body["backend"] == "sandbox"


def test_linking_calls_without_a_worker_are_worker_unavailable(alice, as_alice):
    response = as_alice.post(CODE, {"phone_number": ALICE_PHONE}, format="json")
    assert response.status_code == 503
    assert response.json()["error_code"] == "WORKER_UNAVAILABLE"
    assert as_alice.post("/api/v1/companies/alice/session/start/").json()["error_code"] == (
        "WORKER_UNAVAILABLE"
    )
