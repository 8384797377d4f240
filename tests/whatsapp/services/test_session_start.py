"""session_start: the QR flow of docs/design.md, "Linking rules", against the sandbox."""

from __future__ import annotations

import pytest

from tests.helpers import session_of, wait_for, wait_status
from whatsapp.models import AttemptMethod, AttemptOutcome, PairingAttempt, SessionStatus
from whatsapp.sandbox import phone
from whatsapp.selectors import session_snapshot
from whatsapp.services import linking
from whatsapp.services.actors import SYSTEM

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_shows_a_qr_as_raw_string_and_png_and_links_when_scanned(alice, worker):
    linking.session_start(company=alice, actor=SYSTEM)
    session = wait_status(alice, SessionStatus.QR_READY)
    snapshot = session_snapshot(session)
    assert snapshot["qr"]["qr"].startswith("https://wa.me/settings/linked_devices#")
    assert snapshot["qr"]["image"].startswith("data:image/png;base64,")
    phone.link_with_qr("+14155552671", session.qr_code)
    session = wait_status(alice, SessionStatus.CONNECTED)
    assert session.linked_phone == "+14155552671" and session.has_credentials
    attempt = PairingAttempt.objects.get(company=alice)
    assert (attempt.method, attempt.outcome) == (AttemptMethod.QR, AttemptOutcome.LINKED)


def test_it_is_idempotent_while_linking(alice, worker):
    first = linking.session_start(company=alice, actor=SYSTEM)
    second = linking.session_start(company=alice, actor=SYSTEM)
    assert first.current_attempt_id == second.current_attempt_id
    assert PairingAttempt.objects.filter(company=alice).count() == 1


def test_the_qr_rotates_then_expires_and_a_new_attempt_can_start(alice, worker, settings):
    settings.WHATSAPP_SANDBOX_SPEED = 80.0  # 160 s window -> 2 s
    linking.session_start(company=alice, actor=SYSTEM)
    first = wait_status(alice, SessionStatus.QR_READY).qr_code
    wait_for(lambda: session_of(alice).qr_code not in ("", first), what="a rotated QR")
    session = wait_status(alice, SessionStatus.DISCONNECTED, timeout=10)
    assert session.last_error_code == "PAIRING_EXPIRED" and session.qr_code == ""
    attempt = PairingAttempt.objects.get(company=alice)
    assert attempt.outcome == AttemptOutcome.EXPIRED and attempt.qr_rotations == 5
    linking.session_start(company=alice, actor=SYSTEM)
    wait_status(alice, SessionStatus.QR_READY)
    assert PairingAttempt.objects.filter(company=alice).count() == 2


def test_a_connected_company_is_returned_as_is(alice, worker):
    code = linking.pairing_code_request(company=alice, phone_number="+79001234567", actor=SYSTEM)
    phone.link_with_code("+79001234567", code.pairing_code)
    wait_status(alice, SessionStatus.CONNECTED)
    assert linking.session_start(company=alice, actor=SYSTEM).status == SessionStatus.CONNECTED
    assert PairingAttempt.objects.filter(company=alice).count() == 1
