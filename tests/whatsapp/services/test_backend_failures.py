"""Every error a backend can raise reaches the caller with its error code (docs/design.md, "Errors"), and leaves an honest
record: the attempt failed with that code, the session says it, the lock is free.

A small fake backend stands in for WhatsApp here (STYLE.md 8): its QR arrives at once and its
pair_phone raises what the test asks for.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.helpers import session_of
from whatsapp import errors
from whatsapp.backends.base import Backend, BackendClient, QRCode
from whatsapp.models import AttemptOutcome, PairingAttempt, SessionStatus
from whatsapp.services import linking
from whatsapp.services.actors import SYSTEM
from whatsapp.worker.inprocess import ThreadedWorker

pytestmark = pytest.mark.django_db(transaction=True)


class FailingClient(BackendClient):
    def __init__(self, on_event, failure: BaseException) -> None:
        self.on_event, self.failure = on_event, failure

    async def connect(self) -> None:
        now = timezone.now()
        asyncio.get_running_loop().create_task(
            self.on_event(
                QRCode(
                    code="https://wa.me/settings/linked_devices#fake",
                    index=0,
                    expires_at=now + timedelta(seconds=60),
                    window_expires_at=now + timedelta(seconds=160),
                )
            )
        )

    async def pair_phone(self, phone_digits: str) -> str:
        raise self.failure

    async def logout(self) -> None:
        pass

    async def disconnect(self) -> None:
        pass


class FailingBackend(Backend):
    name = "failing"

    def __init__(self, failure: BaseException) -> None:
        self.failure = failure

    def create_client(self, *, client_uuid, device_jid, on_event):
        return FailingClient(on_event, self.failure)

    def credentials_exists(self, *, client_uuid, device_jid) -> bool:
        return False

    def credentials_delete(self, *, client_uuid, device_jid) -> int:
        return 0


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (errors.ConnectionClosed("websocket not connected"), "CONNECTION_CLOSED"),
        (
            errors.WhatsAppUnavailable("lookup web.whatsapp.com: no such host"),
            "WHATSAPP_UNAVAILABLE",
        ),
        (errors.InvalidPhone("phone number too short"), "INVALID_PHONE"),
        (errors.OperationTimeout("info query timed out"), "TIMEOUT"),
        (RuntimeError("a bug in a backend"), "INTERNAL_ERROR"),
    ],
)
def test_a_backend_failure_keeps_its_code_and_is_recorded(alice, failure, code):
    worker = ThreadedWorker(backend=FailingBackend(failure))
    worker.start()
    try:
        with pytest.raises(errors.ServiceError) as raised:
            linking.pairing_code_request(company=alice, phone_number="+79001234567", actor=SYSTEM)
    finally:
        worker.stop()
    assert raised.value.code == code
    attempt = PairingAttempt.objects.get(company=alice)
    assert (attempt.outcome, attempt.error_code, attempt.reached_whatsapp) == (
        AttemptOutcome.FAILED,
        code,
        True,
    )
    session = session_of(alice)
    assert (session.status, session.last_error_code, session.lock_token) == (
        SessionStatus.DISCONNECTED,
        code,
        "",
    )
