"""GET/POST /companies/ and GET /companies/{slug}/."""

from __future__ import annotations

from whatsapp.models import Company, WhatsAppSession


def test_list_shape(alice, as_global):
    body = as_global.get("/api/v1/companies/").json()
    assert body["success"] is True
    assert body["count"] == 1 and body["next"] is None and body["previous"] is None
    company = body["results"][0]
    assert company["slug"] == "alice" and company["name"] == "Alice's Salon"
    assert company["session"]["status"] == "disconnected"


def test_list_is_paginated(as_global, db):
    for n in range(5):
        Company.objects.create(slug=f"c{n}", name=f"C{n}")
    body = as_global.get("/api/v1/companies/?limit=2&offset=2").json()
    assert [c["slug"] for c in body["results"]] == ["c2", "c3"]
    assert body["count"] == 5
    assert body["next"].endswith("limit=2&offset=4")
    assert "offset" not in body["previous"]


def test_list_rejects_bad_paging(as_global, db):
    response = as_global.get("/api/v1/companies/?limit=0&offset=-1")
    assert response.status_code == 400
    assert response.json()["error_code"] == "VALIDATION_ERROR"
    assert set(response.json()["details"]) == {"limit", "offset"}


def test_a_global_key_creates_a_company_with_its_session(as_global):
    response = as_global.post(
        "/api/v1/companies/", {"slug": "962302", "name": "Dave's Deli"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True and body["slug"] == "962302" and body["name"] == "Dave's Deli"
    assert body["session"]["status"] == "disconnected"
    assert WhatsAppSession.objects.filter(company__slug="962302").exists()


def test_create_rejects_a_taken_slug(alice, as_global):
    response = as_global.post(
        "/api/v1/companies/", {"slug": "alice", "name": "Again"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "VALIDATION_ERROR"
    assert "slug" in response.json()["details"]


def test_create_rejects_bad_fields(as_global):
    response = as_global.post("/api/v1/companies/", {"slug": "no spaces/please"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "VALIDATION_ERROR"
    assert set(body["details"]) == {"slug", "name"}


def test_staff_can_create_a_company(staff_user):
    from rest_framework.test import APIClient

    client = APIClient()  # CSRF is checked in test_auth; here only the permission
    client.force_login(staff_user)
    response = client.post("/api/v1/companies/", {"slug": "erin", "name": "Erin"}, format="json")
    assert response.status_code == 201


def test_detail_shape(alice, as_alice):
    body = as_alice.get("/api/v1/companies/alice/").json()
    assert body["success"] is True
    assert set(body) == {"success", "slug", "name", "created_at", "session"}
    assert set(body["session"]) == {
        "status",
        "status_changed_at",
        "linked_phone",
        "linked_at",
        "last_error_code",
        "last_error",
        "has_credentials",
        "attempt_id",
        "qr",
        "pairing_code",
    }


def test_unknown_company_is_404(as_global, db):
    response = as_global.get("/api/v1/companies/nobody/")
    assert response.status_code == 404
    assert response.json()["error_code"] == "COMPANY_NOT_FOUND"
