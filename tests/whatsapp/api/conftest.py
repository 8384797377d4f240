"""API fixtures: Alice's and Bob's company keys, a global key, a staff user, and clients."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tests.whatsapp.api.helpers import client_with_key
from whatsapp.models import ApiKey


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
