"""The simulated phone's routes (docs/design.md, "Backends"): sandbox mode only."""

from __future__ import annotations

import pytest

from tests.helpers import ALICE_PHONE
from tests.whatsapp.api.helpers import link_by_code, wait_for_status
from whatsapp.services.actors import CLI
from whatsapp.services.links import pairing_link_create

LINK = "/api/v1/sandbox/phone/link/"
UNLINK = "/api/v1/sandbox/phone/unlink/"


@pytest.mark.django_db(transaction=True)
def test_the_phone_links_with_a_code_and_unlinks(alice, as_alice, worker):
    code = as_alice.post(
        "/api/v1/companies/alice/session/pairing-code/",
        {"phone_number": ALICE_PHONE},
        format="json",
    ).json()["pairing_code"]
    response = as_alice.post(
        LINK, {"phone_number": ALICE_PHONE, "pairing_code": code}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and body["phone_number"] == "+79001234567"
    assert body["jid"].startswith("79001234567:")
    wait_for_status(as_alice, "alice", "connected")

    unlinked = as_alice.post(UNLINK, {"phone_number": ALICE_PHONE}, format="json")
    assert unlinked.status_code == 200
    assert unlinked.json() == {"success": True, "unlinked": [body["jid"]]}
    wait_for_status(as_alice, "alice", "logged_out")


@pytest.mark.django_db(transaction=True)
def test_the_phone_links_by_scanning_the_qr(alice, as_alice, worker):
    as_alice.post("/api/v1/companies/alice/session/start/")
    wait_for_status(as_alice, "alice", "qr_ready")
    qr = as_alice.get("/api/v1/companies/alice/session/qr/").json()["qr"]
    response = as_alice.post(LINK, {"phone_number": ALICE_PHONE, "qr": qr}, format="json")
    assert response.status_code == 200, response.json()
    wait_for_status(as_alice, "alice", "connected")


@pytest.mark.django_db(transaction=True)
def test_a_pairing_link_token_may_act_as_the_phone(alice, as_alice, anonymous, worker):
    code = as_alice.post(
        "/api/v1/companies/alice/session/pairing-code/",
        {"phone_number": ALICE_PHONE},
        format="json",
    ).json()["pairing_code"]
    token = pairing_link_create(company=alice, actor=CLI).token
    response = anonymous.post(
        LINK,
        {"phone_number": ALICE_PHONE, "pairing_code": code, "link_token": token},
        format="json",
    )
    assert response.status_code == 200, response.json()


def test_phone_refusals_are_validation_errors(alice, as_alice):
    response = as_alice.post(
        LINK, {"phone_number": ALICE_PHONE, "pairing_code": "ABCD-EFGH"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "VALIDATION_ERROR"
    assert "no pairing code is pending" in response.json()["error"]
    nothing = as_alice.post(UNLINK, {"phone_number": ALICE_PHONE}, format="json")
    assert nothing.status_code == 400 and "no device" in nothing.json()["error"]


@pytest.mark.parametrize(
    "body",
    [
        {"phone_number": ALICE_PHONE},
        {"phone_number": ALICE_PHONE, "pairing_code": "A", "qr": "B"},
        {"pairing_code": "ABCD-EFGH"},
    ],
)
def test_it_needs_a_phone_and_exactly_one_of_code_or_qr(alice, as_alice, body):
    response = as_alice.post(LINK, body, format="json")
    assert response.status_code == 400
    assert response.json()["error_code"] == "VALIDATION_ERROR"


def test_it_needs_a_caller(anonymous, alice):
    response = anonymous.post(
        LINK, {"phone_number": ALICE_PHONE, "pairing_code": "ABCD-EFGH"}, format="json"
    )
    assert response.status_code == 401
    assert response.json()["error_code"] == "NOT_AUTHENTICATED"
    bad_link = anonymous.post(
        LINK,
        {"phone_number": ALICE_PHONE, "pairing_code": "ABCD-EFGH", "link_token": "bogus:token"},
        format="json",
    )
    assert bad_link.status_code == 401


def test_the_routes_do_not_exist_outside_the_sandbox(alice, as_alice, settings):
    settings.WHATSAPP_BACKEND = "neonize"
    for path in (LINK, UNLINK):
        response = as_alice.post(path, {"phone_number": ALICE_PHONE}, format="json")
        assert response.status_code == 404
        assert response.json()["error_code"] == "COMPANY_NOT_FOUND"


@pytest.mark.django_db(transaction=True)
def test_link_by_code_helper_really_connects(alice, as_alice, worker):
    assert link_by_code(as_alice, "alice")["linked_phone"] == "+79001234567"
