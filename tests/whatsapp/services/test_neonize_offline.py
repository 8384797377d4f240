"""The default backend on a machine without WhatsApp: honest errors, nothing crashes."""

from __future__ import annotations

import time

import pytest

from tests.helpers import session_of, wait_for
from whatsapp.backends import reset_backends
from whatsapp.errors import WhatsAppUnavailable
from whatsapp.models import AttemptOutcome, PairingAttempt, SessionStatus
from whatsapp.services import linking
from whatsapp.services.actors import SYSTEM
from whatsapp.worker.inprocess import ThreadedWorker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def neonize_worker(settings):
    settings.WHATSAPP_BACKEND = "neonize"
    reset_backends()
    threaded = ThreadedWorker()
    threaded.start()
    yield threaded
    threaded.stop()


def test_starting_a_session_ends_whatsapp_unavailable_within_5_seconds(alice, neonize_worker):
    started = time.monotonic()
    linking.session_start(company=alice, actor=SYSTEM)
    session = wait_for(
        lambda: (s := session_of(alice)).last_error_code == "WHATSAPP_UNAVAILABLE" and s,
        timeout=5,
        what="WHATSAPP_UNAVAILABLE on the session",
    )
    assert time.monotonic() - started < 5
    assert session.status == SessionStatus.DISCONNECTED and not session.wants_running
    attempt = PairingAttempt.objects.get(company=alice)
    assert (attempt.outcome, attempt.error_code) == (AttemptOutcome.FAILED, "WHATSAPP_UNAVAILABLE")


def test_a_pairing_code_request_says_whatsapp_unavailable(alice, neonize_worker):
    with pytest.raises(WhatsAppUnavailable):
        linking.pairing_code_request(company=alice, phone_number="+79001234567", actor=SYSTEM)
    assert session_of(alice).lock_token == ""
    # The worker is still there for the next request.
    with pytest.raises(WhatsAppUnavailable):
        linking.pairing_code_request(company=alice, phone_number="+79001234567", actor=SYSTEM)
