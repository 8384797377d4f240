"""The staff console (docs/design.md, "Pages"): staff only, live list, per-company controls."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.helpers import session_of
from whatsapp.models import AttemptMethod, PairingAttempt, SessionStatus
from whatsapp.services.state import session_write

pytestmark = pytest.mark.django_db


def test_anonymous_visitors_are_sent_to_the_admin_login(client, alice):
    response = client.get("/console/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/console/"


def test_logged_in_non_staff_users_cannot_see_the_console(client, alice, django_user_model):
    client.force_login(django_user_model.objects.create_user("eve", password="pw-eve-123"))

    assert client.get("/console/").status_code == 302
    assert client.get(f"/console/{alice.slug}/").status_code == 302
    assert client.post(f"/console/{alice.slug}/reset/").status_code == 302


def test_staff_see_every_company_with_its_status(staff_client, alice, bob):
    session_write(session_of(bob), status=SessionStatus.CONNECTED, linked_phone="+79001234567")

    html = staff_client.get("/console/").content.decode()

    assert "Alice&#x27;s Salon" in html and "Bob&#x27;s Barbers" in html
    assert "badge--connected" in html and "+79001234567" in html


def test_search_and_status_filter(staff_client, alice, bob):
    session_write(session_of(bob), status=SessionStatus.CONNECTED)

    by_name = staff_client.get("/console/?q=barb").content.decode()
    by_status = staff_client.get("/console/?status=connected").content.decode()
    not_linked = staff_client.get("/console/?status=disconnected").content.decode()

    assert "Bob" in by_name and "Alice" not in by_name
    assert "Bob" in by_status and "Alice" not in by_status
    assert "Alice" in not_linked and "Bob" not in not_linked


def test_the_rows_partial_is_what_the_page_polls(staff_client, alice):
    response = staff_client.get("/console/?partial=rows")

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith("<tr") and "<html" not in html


def test_the_company_page_has_the_controls_and_the_history(staff_client, alice):
    PairingAttempt.objects.create(
        company=alice,
        method=AttemptMethod.CODE,
        phone="+79001234567",
        started_by="user:sam",
        outcome="expired",
    )

    html = staff_client.get(f"/console/{alice.slug}/").content.decode()

    for text in (
        "Start QR linking",
        "Get code",
        "Reconnect",
        "Reset credentials",
        "Create pairing link",
        "Attempt history",
        "+79001234567",
        "user:sam",
    ):
        assert text in html
    assert f"/ws/v1/companies/{alice.slug}/" in html


def test_creating_a_pairing_link_shows_it_once_with_a_copy_button(staff_client, alice):
    response = staff_client.post(
        reverse("console-pairing-link", args=[alice.slug]), {"expires_in": "3600"}, follow=True
    )

    html = response.content.decode()
    assert "Pairing link created" in html
    assert "/pair/" in html and 'data-copy-target="new-link-url"' in html
    assert "/pair/" not in staff_client.get(f"/console/{alice.slug}/").content.decode()


def test_reconnect_without_credentials_explains_what_to_do(staff_client, alice):
    response = staff_client.post(reverse("console-reconnect", args=[alice.slug]), follow=True)

    assert "There is no linked WhatsApp account to reconnect" in response.content.decode()


def test_a_bad_phone_number_is_explained(staff_client, alice):
    response = staff_client.post(
        reverse("console-pairing-code", args=[alice.slug]), {"phone_number": "12"}, follow=True
    )

    assert "This phone number does not look right" in response.content.decode()


def test_reset_asks_for_confirmation_then_clears_the_link(staff_client, alice):
    session_write(
        session_of(alice),
        status=SessionStatus.CONNECTED,
        linked_phone="+79001234567",
        linked_jid="79001234567:3@s.whatsapp.net",
        has_credentials=True,
    )
    url = reverse("console-reset", args=[alice.slug])

    confirm = staff_client.get(url).content.decode()
    assert "+79001234567" in confirm and "79001234567:3@s.whatsapp.net" in confirm
    assert session_of(alice).has_credentials

    response = staff_client.post(url, follow=True)

    assert "WhatsApp credentials of Alice&#x27;s Salon were removed" in response.content.decode()
    session = session_of(alice)
    assert not session.has_credentials and session.linked_phone == ""
    assert PairingAttempt.objects.filter(
        company=alice, method=AttemptMethod.RESET, started_by="user:sam"
    ).exists()


def test_console_forms_need_csrf(alice, django_user_model):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(
        django_user_model.objects.create_user("sam", password="x", is_staff=True)
    )

    assert csrf_client.post(reverse("console-reset", args=[alice.slug])).status_code == 403
