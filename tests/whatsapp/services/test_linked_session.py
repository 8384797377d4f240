"""After linking (docs/design.md, "Linking rules"): reconnects, logouts from the phone, bans, restarts."""

from __future__ import annotations

import pytest

from tests.helpers import ALICE_E164, link, session_of, wait_status
from whatsapp.errors import NoCredentials
from whatsapp.models import AttemptMethod, PairingAttempt, SessionStatus
from whatsapp.sandbox import phone
from whatsapp.sandbox.models import Device
from whatsapp.services import linking
from whatsapp.services.actors import SYSTEM
from whatsapp.worker.inprocess import ThreadedWorker

pytestmark = pytest.mark.django_db(transaction=True)


def test_reconnect_needs_credentials(alice, worker):
    with pytest.raises(NoCredentials):
        linking.session_reconnect(company=alice, actor=SYSTEM)


def test_reconnect_opens_a_fresh_connection_with_the_same_device(alice, worker):
    jid = link(alice).linked_jid
    linking.session_reconnect(company=alice, actor=SYSTEM)
    session = wait_status(alice, SessionStatus.CONNECTED)
    assert session.linked_jid == jid


def test_a_dropped_connection_reconnects_by_itself(alice, worker):
    link(alice)
    phone.drop_connection(ALICE_E164)
    wait_status(alice, SessionStatus.RECONNECTING)
    assert wait_status(alice, SessionStatus.CONNECTED).last_error_code == ""


def test_logout_from_the_phone_turns_logged_out_and_clears_credentials(alice, worker):
    jid = link(alice).linked_jid
    phone.unlink(ALICE_E164)
    session = wait_status(alice, SessionStatus.LOGGED_OUT)
    assert session.last_error_code == "LOGGED_OUT" and not session.has_credentials
    assert not Device.objects.filter(jid=jid).exists()
    assert PairingAttempt.objects.filter(
        company=alice, method=AttemptMethod.RESET, started_by="whatsapp"
    ).exists()


@pytest.mark.parametrize(
    ("number", "reason"),
    [("+79001230402", "TEMPORARILY_BANNED"), ("+79001230405", "CLIENT_OUTDATED")],
)
def test_a_ban_or_an_outdated_client_is_a_failure_with_its_reason(alice, worker, number, reason):
    code = linking.pairing_code_request(company=alice, phone_number=number, actor=SYSTEM)
    phone.link_with_code(number, code.pairing_code)
    session = wait_status(alice, SessionStatus.FAILED)
    assert session.last_error_code == reason


def test_a_link_survives_a_worker_restart(alice, worker):
    jid = link(alice).linked_jid
    worker.stop()
    session = session_of(alice)
    assert session.owner == "" and session.wants_running  # handed back, still wanted
    assert session.status == SessionStatus.RECONNECTING  # nobody keeps it online meanwhile
    again = ThreadedWorker()
    again.start()
    try:
        session = wait_status(alice, SessionStatus.CONNECTED)
        assert session.linked_jid == jid and session.owner == again.worker.worker_id
    finally:
        again.stop()


def test_two_workers_never_run_one_company(alice, worker):
    link(alice)
    other = ThreadedWorker()
    other.start()
    try:
        assert other.call(other.worker.step_claim()) == 0
        assert session_of(alice).owner == worker.worker.worker_id
        assert Device.objects.get(phone=ALICE_E164[1:]).connection_token  # still the first's stream
    finally:
        other.stop()


def test_reconnect_and_logout_are_audited_with_who_did_it(alice, worker):
    from whatsapp.models import AuditAction, AuditEvent

    link(alice)
    staff = SYSTEM.__class__(kind="user", label="user:staff")
    linking.session_reconnect(company=alice, actor=staff)
    wait_status(alice, SessionStatus.CONNECTED)
    linking.session_logout(company=alice, actor=staff)
    actions = list(AuditEvent.objects.filter(company=alice).values_list("action", "actor"))
    assert sorted(actions) == [
        (AuditAction.LOGOUT, "user:staff"),
        (AuditAction.RECONNECT, "user:staff"),
    ]
