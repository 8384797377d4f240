"""API fixtures: Alice's and Bob's company keys, a global key, a staff user, and clients."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from whatsapp.models import ApiKey


def client_with_key(raw_key: str | None, *, scheme: str = "Bearer") -> APIClient:
    client = APIClient()
    if raw_key is not None:
        client.credentials(HTTP_AUTHORIZATION=f"{scheme} {raw_key}")
    return client


@pytest.fixture
def global_key(db) -> str:
    return ApiKey.issue(name="staff-tools", company=None)[1]


@pytest.fixture
def as_alice(alice_key: str) -> APIClient:
    return client_with_key(alice_key)


@pytest.fixture
def as_bob(bob_key: str) -> APIClient:
    return client_with_key(bob_key)


@pytest.fixture
def as_global(global_key: str) -> APIClient:
    return client_with_key(global_key)


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


@pytest.fixture
def staff_user(db):
    return get_user_model().objects.create_user(
        username="sam", password="pw-sam-12345", is_staff=True
    )


@pytest.fixture
def as_staff(staff_user) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff_user)
    return client


ALICE_PHONE = "+7 900 123-45-67"
ALICE_E164 = "+79001234567"


def wait_for_status(client: APIClient, slug: str, wanted: str, *, within: float = 5.0) -> dict:
    import time

    deadline = time.monotonic() + within
    while True:
        session = client.get(f"/api/v1/companies/{slug}/session/").json()
        if session.get("status") == wanted or time.monotonic() > deadline:
            assert session.get("status") == wanted, session
            return session
        time.sleep(0.05)


def link_by_code(client: APIClient, slug: str, phone: str = ALICE_PHONE) -> dict:
    """Link `slug` through the API and the sandbox phone; returns the connected session."""
    code = client.post(
        f"/api/v1/companies/{slug}/session/pairing-code/", {"phone_number": phone}, format="json"
    )
    assert code.status_code == 200, code.json()
    linked = client.post(
        "/api/v1/sandbox/phone/link/",
        {"phone_number": phone, "pairing_code": code.json()["pairing_code"]},
        format="json",
    )
    assert linked.status_code == 200, linked.json()
    return wait_for_status(client, slug, "connected")
