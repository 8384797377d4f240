"""The isolation triple on every endpoint: Alice's key works on Alice's company, Bob's key gets
404 COMPANY_NOT_FOUND (exactly like a company that does not exist) and changes nothing, and no
key gets 401 NOT_AUTHENTICATED."""

from __future__ import annotations

import pytest

from tests.helpers import ALICE_PHONE
from tests.whatsapp.api.helpers import client_with_key
from whatsapp.models import PairingAttempt

# method, path under /companies/alice/, body, status for Alice on a fresh company, needs worker
ENDPOINTS = [
    ("get", "", None, 200, False),
    ("get", "session/", None, 200, False),
    ("post", "session/start/", None, 202, True),
    ("get", "session/qr/", None, 409, False),
    ("post", "session/pairing-code/", {"phone_number": ALICE_PHONE}, 200, True),
    ("post", "session/reconnect/", None, 409, False),
    ("post", "session/logout/", None, 200, False),
    ("get", "session/health/", None, 200, False),
    ("get", "credentials/", None, 200, False),
    ("delete", "credentials/", None, 200, False),
    ("get", "attempts/", None, 200, False),
    ("post", "pairing-links/", {}, 201, False),
]


def _call(client, method: str, path: str, body):
    return (
        getattr(client, method)(path, body, format="json")
        if body is not None
        else getattr(client, method)(path)
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("method", "suffix", "body", "alice_status", "needs_worker"),
    ENDPOINTS,
    ids=[f"{m.upper()} {p or '.'}" for m, p, *_ in ENDPOINTS],
)
def test_only_alice_reaches_alices_company(
    request,
    method,
    suffix,
    body,
    alice_status,
    needs_worker,
    alice,
    bob,
    as_alice,
    as_bob,
    anonymous,
):
    if needs_worker:
        request.getfixturevalue("worker")
    path = f"/api/v1/companies/alice/{suffix}"

    by_bob = _call(as_bob, method, path, body)
    assert by_bob.status_code == 404
    assert by_bob.json() == {
        "success": False,
        "error_code": "COMPANY_NOT_FOUND",
        "error": "No such company.",
    }
    # ... the very same answer as for a company that does not exist
    missing = _call(as_bob, method, f"/api/v1/companies/nobody/{suffix}", body)
    assert (missing.status_code, missing.json()) == (by_bob.status_code, by_bob.json())

    by_nobody = _call(anonymous, method, path, body)
    assert by_nobody.status_code == 401
    assert by_nobody.json()["error_code"] == "NOT_AUTHENTICATED"
    assert by_nobody["WWW-Authenticate"].startswith("Bearer")

    assert not PairingAttempt.objects.filter(company=alice).exists(), "Bob changed Alice's data"

    by_alice = _call(as_alice, method, path, body)
    assert by_alice.status_code == alice_status, by_alice.json()
    assert by_alice.json()["success"] is (alice_status < 400)


def test_company_list_shows_each_key_only_its_company(
    alice, bob, charlie, as_alice, as_global, anonymous, db
):
    from whatsapp.models import ApiKey

    charlie_key = ApiKey.issue(name="c", company=charlie)[1]
    assert [c["slug"] for c in as_alice.get("/api/v1/companies/").json()["results"]] == ["alice"]
    assert [
        c["slug"] for c in client_with_key(charlie_key).get("/api/v1/companies/").json()["results"]
    ] == ["charlie"]
    assert [c["slug"] for c in as_global.get("/api/v1/companies/").json()["results"]] == [
        "alice",
        "bob",
        "charlie",
    ]
    assert anonymous.get("/api/v1/companies/").status_code == 401


def test_company_create_needs_a_global_key_or_staff(as_alice, anonymous, alice):
    body = {"slug": "dave", "name": "Dave's Deli"}
    denied = as_alice.post("/api/v1/companies/", body, format="json")
    assert denied.status_code == 403
    assert denied.json()["error_code"] == "PERMISSION_DENIED"
    assert anonymous.post("/api/v1/companies/", body, format="json").status_code == 401
