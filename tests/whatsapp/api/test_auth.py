"""Authentication: hashed API keys as Bearer or Token, staff sessions with CSRF."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.whatsapp.api.helpers import client_with_key
from whatsapp.models import ApiKey


def test_it_accepts_a_bearer_key(alice, alice_key):
    assert client_with_key(alice_key).get("/api/v1/companies/alice/").status_code == 200


def test_it_accepts_a_token_key(alice, alice_key):
    assert (
        client_with_key(alice_key, scheme="Token").get("/api/v1/companies/alice/").status_code
        == 200
    )


@pytest.mark.parametrize(
    "header", ["Bearer wps_not-a-key", "Bearer", "Token a b", "Bearer " + "x" * 300]
)
def test_it_rejects_bad_keys_with_401(alice, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/companies/alice/")
    assert response.status_code == 401
    assert response.json()["error_code"] == "NOT_AUTHENTICATED"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_it_rejects_a_revoked_key(alice, alice_key):
    ApiKey.objects.update(revoked_at=timezone.now())
    response = client_with_key(alice_key).get("/api/v1/companies/alice/")
    assert response.status_code == 401
    assert response.json()["error_code"] == "NOT_AUTHENTICATED"


def test_keys_are_stored_hashed(alice, alice_key):
    key = ApiKey.objects.get()
    assert alice_key not in (key.key_hash, key.prefix, key.name)
    assert ApiKey.find(alice_key) == key


def test_it_records_last_use_at_most_once_a_minute(alice, alice_key, django_assert_num_queries):
    client = client_with_key(alice_key)
    client.get("/api/v1/companies/alice/session/")
    first = ApiKey.objects.get().last_used_at
    assert first is not None
    client.get("/api/v1/companies/alice/session/")
    assert ApiKey.objects.get().last_used_at == first
    ApiKey.objects.update(last_used_at=timezone.now() - timedelta(minutes=2))
    client.get("/api/v1/companies/alice/session/")
    later = ApiKey.objects.get().last_used_at
    assert later is not None and later > first


def test_staff_session_sees_every_company(alice, bob, as_staff):
    response = as_staff.get("/api/v1/companies/")
    assert [c["slug"] for c in response.json()["results"]] == ["alice", "bob"]
    assert as_staff.get("/api/v1/companies/bob/session/").status_code == 200


def test_staff_session_needs_csrf_for_writes(alice, as_staff):
    response = as_staff.post("/api/v1/companies/alice/pairing-links/", {}, format="json")
    assert response.status_code == 403
    assert response.json()["error_code"] == "PERMISSION_DENIED"
    assert "CSRF" in response.json()["error"]


def test_staff_session_with_csrf_token_can_write(alice, staff_user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff_user)
    client.get("/admin/")  # renders a form: sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = client.post(
        "/api/v1/companies/alice/pairing-links/", {}, format="json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 201, response.json()


def test_a_non_staff_session_is_not_authenticated(alice, django_user_model):
    user = django_user_model.objects.create_user(username="eve", password="pw-eve-12345")
    client = APIClient()
    client.force_login(user)
    response = client.get("/api/v1/companies/alice/")
    assert response.status_code == 401
    assert response.json()["error_code"] == "NOT_AUTHENTICATED"
