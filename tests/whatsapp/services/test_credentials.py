"""credentials_status / credentials_reset / session_logout / attempt_cancel."""

from __future__ import annotations

import pytest

from tests.helpers import link, session_of, wait_status
from whatsapp.errors import PermissionDenied
from whatsapp.models import AttemptMethod, AttemptOutcome, PairingAttempt, SessionStatus
from whatsapp.sandbox.models import Device
from whatsapp.selectors import credentials_status
from whatsapp.services import linking
from whatsapp.services.actors import SYSTEM, Actor

pytestmark = pytest.mark.django_db(transaction=True)


def test_status_tells_whether_credentials_exist_and_whose(alice, worker):
    assert credentials_status(alice) == {
        "has_credentials": False,
        "stored_phone": None,
        "linked_at": None,
        "can_reset": False,
    }
    link(alice, "+79001234567")
    status = credentials_status(alice)
    assert status["has_credentials"] and status["can_reset"]
    assert status["stored_phone"] == "+79001234567" and status["linked_at"]


def test_reset_deletes_exactly_this_companys_credentials_and_audits_it(alice, bob, worker):
    link(alice, "+79001234567")
    link(bob, "+79007654321")
    staff = Actor(kind="user", label="user:staff")
    audit = linking.credentials_reset(company=alice, actor=staff)
    assert (audit.method, audit.outcome, audit.started_by) == (
        AttemptMethod.RESET,
        AttemptOutcome.CLEARED,
        "user:staff",
    )
    alice_session = session_of(alice)
    assert alice_session.status == SessionStatus.DISCONNECTED and not alice_session.has_credentials
    assert alice_session.linked_phone == "" and alice_session.owner == ""
    assert not Device.objects.filter(client_uuid=str(alice_session.client_uuid)).exists()
    assert Device.objects.filter(client_uuid=str(session_of(bob).client_uuid)).exists()
    assert session_of(bob).status == SessionStatus.CONNECTED


def test_a_pairing_link_may_not_reset_or_log_out(alice, worker):
    link(alice, "+79001234567")
    end_user = Actor.for_link(company_id=alice.pk, link_id="abc")
    with pytest.raises(PermissionDenied):
        linking.credentials_reset(company=alice, actor=end_user)
    with pytest.raises(PermissionDenied):
        linking.session_logout(company=alice, actor=end_user)
    assert session_of(alice).status == SessionStatus.CONNECTED


def test_logout_unlinks_on_whatsapp_and_deletes_credentials(alice, worker):
    session = link(alice, "+79001234567")
    result = linking.session_logout(company=alice, actor=SYSTEM)
    assert result == {"had_credentials": True, "unlinked_on_whatsapp": True}
    assert not Device.objects.filter(jid=session.linked_jid).exists()
    assert session_of(alice).status == SessionStatus.DISCONNECTED


def test_logout_without_a_worker_still_deletes_credentials(alice, worker):
    session = link(alice, "+79001234567")
    worker.stop()
    result = linking.session_logout(company=alice, actor=SYSTEM)
    assert result["unlinked_on_whatsapp"] is False
    assert not Device.objects.filter(jid=session.linked_jid).exists()


def test_reset_during_linking_cancels_the_attempt(alice, worker):
    linking.session_start(company=alice, actor=SYSTEM)
    wait_status(alice, SessionStatus.QR_READY)
    linking.credentials_reset(company=alice, actor=SYSTEM)
    qr_attempt = PairingAttempt.objects.get(company=alice, method=AttemptMethod.QR)
    assert qr_attempt.outcome == AttemptOutcome.CANCELLED
    assert session_of(alice).status == SessionStatus.DISCONNECTED


def test_an_abandoned_attempt_is_cancelled(alice, worker):
    attempt_id = linking.session_start(
        company=alice, actor=SYSTEM, via_socket=True
    ).current_attempt_id
    assert attempt_id is not None
    assert linking.attempt_cancel(company=alice, attempt_id=attempt_id, reason="abandoned")
    assert PairingAttempt.objects.get(pk=attempt_id).outcome == AttemptOutcome.CANCELLED
    assert session_of(alice).status == SessionStatus.DISCONNECTED
    assert not linking.attempt_cancel(company=alice, attempt_id=attempt_id, reason="again")


def test_deleting_a_company_unlinks_its_device_and_touches_no_other(alice, bob, worker):
    alice_jid = link(alice, "+79001234567").linked_jid
    bob_jid = link(bob, "+79007654321").linked_jid
    alice.delete()
    assert not Device.objects.filter(jid=alice_jid).exists()
    assert Device.objects.filter(jid=bob_jid).exists()
    assert session_of(bob).status == SessionStatus.CONNECTED
