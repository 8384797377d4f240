"""GET and DELETE /companies/{slug}/credentials/ (reset)."""

from __future__ import annotations

import pytest

from tests.helpers import ALICE_E164
from tests.whatsapp.api.helpers import link_by_code
from whatsapp.models import AttemptMethod, PairingAttempt


def test_credentials_shape(alice, as_alice):
    body = as_alice.get("/api/v1/companies/alice/credentials/").json()
    assert body == {
        "success": True,
        "has_credentials": False,
        "stored_phone": None,
        "linked_at": None,
        "can_reset": False,
    }


@pytest.mark.django_db(transaction=True)
def test_reset_deletes_the_credentials_and_audits_it(alice, bob, as_alice, as_bob, worker):
    link_by_code(as_alice, "alice")
    link_by_code(as_bob, "bob", phone="+1 415 555 2671")
    before = as_alice.get("/api/v1/companies/alice/credentials/").json()
    assert before["has_credentials"] is True and before["stored_phone"] == ALICE_E164

    response = as_alice.delete("/api/v1/companies/alice/credentials/")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and body["has_credentials"] is False
    audit = PairingAttempt.objects.get(pk=body["reset_attempt_id"])
    assert audit.method == AttemptMethod.RESET and audit.started_by.startswith("api_key:")
    assert as_alice.get("/api/v1/companies/alice/session/").json()["status"] == "disconnected"
    # Bob's link is untouched
    assert as_bob.get("/api/v1/companies/bob/credentials/").json()["has_credentials"] is True
