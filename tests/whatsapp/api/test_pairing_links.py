"""POST /companies/{slug}/pairing-links/: signed, expiring, revocable links."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from whatsapp.services.links import LinkInvalid, pairing_link_resolve


def _token(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


def test_it_creates_a_signed_link(alice, as_alice, settings):
    response = as_alice.post("/api/v1/companies/alice/pairing-links/", {}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"success", "url", "expires_at"}
    assert body["url"].startswith(f"{settings.PUBLIC_BASE_URL}/pair/")
    assert pairing_link_resolve(_token(body["url"])).company == alice
    lifetime = datetime.fromisoformat(body["expires_at"]).timestamp() - time.time()
    assert abs(lifetime - settings.PAIRING_LINK_TTL) < 5


def test_expires_in_sets_the_lifetime(alice, as_alice):
    body = as_alice.post(
        "/api/v1/companies/alice/pairing-links/", {"expires_in": 600}, format="json"
    ).json()
    assert abs(datetime.fromisoformat(body["expires_at"]).timestamp() - time.time() - 600) < 5


@pytest.mark.parametrize("expires_in", [10, 10**9, "soon"])
def test_it_rejects_a_bad_lifetime(alice, as_alice, expires_in):
    response = as_alice.post(
        "/api/v1/companies/alice/pairing-links/", {"expires_in": expires_in}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "VALIDATION_ERROR"
    assert "expires_in" in response.json()["details"]


def test_rotating_the_link_secret_revokes_links(alice, as_alice):
    url = as_alice.post("/api/v1/companies/alice/pairing-links/", {}, format="json").json()["url"]
    alice.rotate_link_secret()
    with pytest.raises(LinkInvalid):
        pairing_link_resolve(_token(url))
