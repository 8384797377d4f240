"""GET /companies/{slug}/attempts/: history, newest first, paginated."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from whatsapp.models import PairingAttempt


def _attempts(company, n: int) -> list[PairingAttempt]:
    now = timezone.now()
    return [
        PairingAttempt.objects.create(
            company=company,
            method="qr",
            started_by="system",
            started_at=now - timedelta(minutes=n - i),
        )
        for i in range(n)
    ]


def test_newest_first_and_paginated(alice, bob, as_alice):
    made = _attempts(alice, 3)
    _attempts(bob, 2)
    body = as_alice.get("/api/v1/companies/alice/attempts/?limit=2").json()
    assert body["success"] is True and body["count"] == 3
    assert [a["id"] for a in body["results"]] == [made[2].pk, made[1].pk]
    rest = as_alice.get(body["next"]).json()
    assert [a["id"] for a in rest["results"]] == [made[0].pk]
    assert rest["next"] is None


def test_attempt_shape(alice, as_alice):
    _attempts(alice, 1)
    attempt = as_alice.get("/api/v1/companies/alice/attempts/").json()["results"][0]
    assert set(attempt) == {
        "id",
        "method",
        "phone",
        "started_by",
        "started_at",
        "finished_at",
        "qr_rotations",
        "outcome",
        "error_code",
        "via_socket",
        "note",
    }
    assert attempt["outcome"] is None and attempt["method"] == "qr"


def test_it_rejects_bad_paging(alice, as_alice):
    response = as_alice.get("/api/v1/companies/alice/attempts/?limit=1000")
    assert response.status_code == 400
    assert response.json()["error_code"] == "VALIDATION_ERROR"
