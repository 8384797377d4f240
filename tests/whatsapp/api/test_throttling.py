"""Per-company limits (docs/design.md, "Linking rules"): writes and reads per minute, 429 RATE_LIMITED with
Retry-After, counted in the shared cache."""

from __future__ import annotations

import pytest


@pytest.fixture
def low_limits(settings):
    settings.API_THROTTLE_WRITES_PER_MINUTE = 3
    settings.API_THROTTLE_READS_PER_MINUTE = 5


def test_writes_are_limited_per_company(alice, bob, as_alice, as_bob, low_limits):
    links = "/api/v1/companies/alice/pairing-links/"
    for _ in range(3):
        assert as_alice.post(links, {}, format="json").status_code == 201
    limited = as_alice.post(links, {}, format="json")
    assert limited.status_code == 429
    body = limited.json()
    assert body["error_code"] == "RATE_LIMITED"
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert body["details"]["retry_after"] == int(limited["Retry-After"])
    # other writes of the same company share the budget; reads have their own
    assert as_alice.delete("/api/v1/companies/alice/credentials/").status_code == 429
    assert as_alice.get("/api/v1/companies/alice/session/").status_code == 200
    # Bob's company is not affected
    assert as_bob.post("/api/v1/companies/bob/pairing-links/", {}, format="json").status_code == 201


def test_reads_are_limited_per_company(alice, as_alice, low_limits):
    statuses = [as_alice.get("/api/v1/companies/alice/session/").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]


def test_a_caller_who_cannot_see_a_company_does_not_use_its_budget(
    alice, as_alice, as_bob, low_limits
):
    for _ in range(10):
        assert (
            as_bob.post("/api/v1/companies/alice/pairing-links/", {}, format="json").status_code
            == 404
        )
    assert (
        as_alice.post("/api/v1/companies/alice/pairing-links/", {}, format="json").status_code
        == 201
    )


def test_the_limit_holds_across_callers_of_one_company(alice, as_alice, as_global, low_limits):
    links = "/api/v1/companies/alice/pairing-links/"
    for client in (as_alice, as_global, as_alice):
        assert client.post(links, {}, format="json").status_code == 201
    assert as_global.post(links, {}, format="json").status_code == 429
