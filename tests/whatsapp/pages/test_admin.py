"""Django admin (docs/design.md, "Pages"): company actions, their confirmation and their admin log."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.messages import get_messages

from tests.helpers import ALICE_E164, session_of, wait_status
from whatsapp.models import ApiKey, AttemptMethod, PairingAttempt, SessionStatus, Worker
from whatsapp.sandbox import phone
from whatsapp.services import linking
from whatsapp.services.actors import SYSTEM
from whatsapp.services.state import session_write

CHANGELIST = "/admin/whatsapp/company/"


def action(client, name, *companies, **extra):
    data = {"action": name, "_selected_action": [c.pk for c in companies], **extra}
    return client.post(CHANGELIST, data)


def log_messages(company) -> list[str]:
    return list(
        LogEntry.objects.filter(object_id=str(company.pk), action_flag=CHANGE).values_list(
            "change_message", flat=True
        )
    )


def flash(response) -> str:
    return " ".join(str(m) for m in get_messages(response.wsgi_request))


@pytest.mark.django_db
def test_the_company_list_shows_status_badge_phone_and_last_error(staff_client, alice, bob):
    session_write(session_of(alice), status=SessionStatus.CONNECTED, linked_phone=ALICE_E164)
    session_write(session_of(bob), status=SessionStatus.FAILED, last_error_code="CLIENT_OUTDATED")

    html = staff_client.get(CHANGELIST).content.decode()

    assert "badge--connected" in html and ALICE_E164 in html
    assert "badge--failed" in html and "CLIENT_OUTDATED" in html
    assert "Reset WhatsApp credentials" in html and "Create pairing link" in html


@pytest.mark.django_db
def test_the_status_filter_works(staff_client, alice, bob):
    session_write(session_of(alice), status=SessionStatus.CONNECTED)

    html = staff_client.get(CHANGELIST + "?status=connected").content.decode()

    assert "Alice" in html and "Bob&#x27;s Barbers" not in html


@pytest.mark.django_db(transaction=True)
def test_reset_shows_what_will_be_removed_then_removes_it_and_logs_it(
    staff_client, alice, bob, worker
):
    code = linking.pairing_code_request(company=alice, phone_number=ALICE_E164, actor=SYSTEM)
    phone.link_with_code(ALICE_E164, code.pairing_code)
    linked = wait_status(alice, SessionStatus.CONNECTED)

    confirmation = action(staff_client, "reset_credentials", alice)

    html = confirmation.content.decode()
    assert confirmation.status_code == 200
    assert ALICE_E164 in html and linked.linked_jid in html and "yes, will be deleted" in html
    assert session_of(alice).has_credentials  # nothing removed yet

    response = action(staff_client, "reset_credentials", alice, confirm="yes")

    assert response.status_code == 302
    assert "WhatsApp credentials removed for 1" in flash(response)
    session = session_of(alice)
    assert session.status == SessionStatus.DISCONNECTED and not session.has_credentials
    assert not phone.linked_devices(ALICE_E164)
    assert any("Reset WhatsApp credentials" in m for m in log_messages(alice))
    assert log_messages(bob) == []


@pytest.mark.django_db
def test_create_pairing_link_shows_the_link_and_logs_it(staff_client, alice):
    response = action(staff_client, "create_pairing_link", alice)

    assert response.status_code == 302
    assert "/pair/" in flash(response)
    assert any(m.startswith("Created pairing link") for m in log_messages(alice))


@pytest.mark.django_db
def test_reconnect_without_credentials_says_so_and_logs_nothing(staff_client, alice):
    response = action(staff_client, "reconnect", alice)

    assert "There is no linked WhatsApp account to reconnect" in flash(response)
    assert log_messages(alice) == []


@pytest.mark.django_db(transaction=True)
def test_reconnect_of_a_linked_company_is_requested_and_logged(staff_client, alice, worker):
    code = linking.pairing_code_request(company=alice, phone_number=ALICE_E164, actor=SYSTEM)
    phone.link_with_code(ALICE_E164, code.pairing_code)
    wait_status(alice, SessionStatus.CONNECTED)

    response = action(staff_client, "reconnect", alice)

    assert "Reconnect requested for 1" in flash(response)
    assert "Reconnect requested" in log_messages(alice)
    wait_status(alice, SessionStatus.CONNECTED)


@pytest.mark.django_db
def test_the_company_page_lists_attempts_read_only(staff_client, alice):
    PairingAttempt.objects.create(
        company=alice, method=AttemptMethod.QR, started_by="user:sam", outcome="expired"
    )

    html = staff_client.get(f"{CHANGELIST}{alice.pk}/change/").content.decode()

    assert "Pairing attempts" in html and "user:sam" in html
    assert 'name="attempts-0-method"' not in html  # shown, not editable


@pytest.mark.django_db
def test_creating_an_api_key_shows_the_raw_key_once_and_never_the_hash(staff_client, alice):
    response = staff_client.post(
        "/admin/whatsapp/apikey/add/", {"name": "crm", "company": alice.pk}, follow=True
    )

    key = ApiKey.objects.get(name="crm")
    shown = response.content.decode()
    raw = shown.split('<code class="raw-key">')[1].split("</code>")[0]
    assert key.key_hash not in shown
    assert ApiKey.find(raw) == key
    assert key.created_by is not None and key.created_by.username == "sam"
    detail = staff_client.get(f"/admin/whatsapp/apikey/{key.pk}/change/").content.decode()
    assert key.key_hash not in detail and raw not in detail


@pytest.mark.django_db
def test_attempts_and_workers_are_read_only(staff_client, alice):
    Worker.objects.create(worker_id="w1")

    assert staff_client.get("/admin/whatsapp/pairingattempt/add/").status_code == 403
    assert staff_client.get("/admin/whatsapp/worker/add/").status_code == 403
    assert staff_client.get("/admin/whatsapp/worker/").status_code == 200


@pytest.mark.django_db
def test_the_admin_shows_the_sandbox_banner_in_sandbox_mode(staff_client, settings):
    assert "sandbox-banner" in staff_client.get("/admin/").content.decode()
    settings.WHATSAPP_BACKEND = "neonize"
    assert "sandbox-banner" not in staff_client.get("/admin/").content.decode()


@pytest.mark.django_db
def test_revoking_pairing_links_voids_earlier_links_and_logs_it(staff_client, alice):
    from whatsapp.models import AuditAction, AuditEvent
    from whatsapp.services.links import LinkInvalid, pairing_link_create, pairing_link_resolve

    old = pairing_link_create(company=alice, actor=SYSTEM)
    response = action(staff_client, "revoke_pairing_links", alice)
    assert response.status_code == 302
    assert "revoked" in flash(response)
    with pytest.raises(LinkInvalid):
        pairing_link_resolve(old.url.rstrip("/").rsplit("/", 1)[-1])
    assert "Revoked every pairing link issued so far" in log_messages(alice)
    assert AuditEvent.objects.get(company=alice, action=AuditAction.LINKS_REVOKED).actor.startswith(
        "user:"
    )
    page = staff_client.get(f"/admin/whatsapp/company/{alice.pk}/change/")
    assert b"links_revoked" in page.content or b"Links revoked" in page.content
