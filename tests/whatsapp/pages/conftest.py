"""Page fixtures: a staff user logged in, pairing links in every state."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils.translation import trans_real

from whatsapp.services.actors import CLI
from whatsapp.services.links import pairing_link_create


@pytest.fixture(scope="session", autouse=True)
def _compiled_translations():
    """The Russian catalog is compiled from the committed .po (the .mo is never committed)."""
    po = settings.BASE_DIR / "locale" / "ru" / "LC_MESSAGES" / "django.po"
    mo = po.with_suffix(".mo")
    if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
        call_command("compilemessages", locale=["ru"], ignore_patterns=[".venv"], verbosity=0)
        # Forget catalogs loaded before the .mo existed.
        setattr(trans_real, "_translations", {})  # noqa: B010 - private, untyped in the stubs
        setattr(trans_real, "_default", None)  # noqa: B010


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_user(
        "sam", password="pw-sam-123", is_staff=True, is_superuser=True
    )
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def alice_link(alice):
    return pairing_link_create(company=alice, actor=CLI)
