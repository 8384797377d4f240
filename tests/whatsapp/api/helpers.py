"""Helpers for API tests: clients with a key, waiting for a status, linking over the API."""

from __future__ import annotations

import time

from rest_framework.test import APIClient

from tests.helpers import ALICE_PHONE


def client_with_key(raw_key: str | None, *, scheme: str = "Bearer") -> APIClient:
    client = APIClient()
    if raw_key is not None:
        client.credentials(HTTP_AUTHORIZATION=f"{scheme} {raw_key}")
    return client


def wait_for_status(client: APIClient, slug: str, wanted: str, *, within: float = 5.0) -> dict:
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
