"""What the runner makes of WhatsApp's verdicts that the sandbox does not play: accounts locked
(403) or banned (406), a refused user agent (409), a passkey request, and a phone that links a
window nobody wants any more (docs/design.md, "Statuses and reasons").

A scripted backend stands in for WhatsApp: the test hands events to the company's client on the
worker's loop, exactly as a backend would.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.helpers import session_of, wait_for, wait_status
from whatsapp import errors
from whatsapp.backends import base
from whatsapp.models import AttemptOutcome, PairingAttempt, SessionStatus
from whatsapp.services import linking
from whatsapp.services.actors import SYSTEM
from whatsapp.services.state import session_get
from whatsapp.worker.inprocess import ThreadedWorker

pytestmark = pytest.mark.django_db(transaction=True)

JID = "79001234567:3@s.whatsapp.net"


class ScriptedClient(base.BackendClient):
    def __init__(self, backend: ScriptedBackend, device_jid: str | None, on_event: Any) -> None:
        self.backend, self.device_jid, self.on_event = backend, device_jid, on_event

    async def connect(self) -> None:
        self.backend.clients.append(self)
        if self.device_jid:
            await self.on_event(base.Connected(jid=self.device_jid, phone="79001234567"))
            return
        now = timezone.now()
        await self.on_event(
            base.QRCode(
                code="2@scripted,ref",
                index=0,
                expires_at=now + timedelta(seconds=60),
                window_expires_at=now + timedelta(seconds=160),
            )
        )

    async def pair_phone(self, phone_digits: str) -> str:
        return "ABCD-EFGH"

    async def logout(self) -> None:
        pass

    async def disconnect(self) -> None:
        pass


class ScriptedBackend(base.Backend):
    name = "scripted"

    def __init__(self) -> None:
        self.clients: list[ScriptedClient] = []
        self.deleted: list[str | None] = []

    def create_client(self, *, client_uuid: str, device_jid: str | None, on_event: Any) -> Any:
        return ScriptedClient(self, device_jid, on_event)

    def credentials_exists(self, *, client_uuid: str, device_jid: str | None) -> bool:
        return False

    def credentials_delete(self, *, client_uuid: str, device_jid: str | None) -> int:
        self.deleted.append(device_jid)
        return 1


@pytest.fixture
def scripted() -> Any:
    backend = ScriptedBackend()
    threaded = ThreadedWorker(backend=backend)
    threaded.start()
    yield threaded, backend
    threaded.stop()


def send(threaded: ThreadedWorker, backend: ScriptedBackend, event: base.BackendEvent) -> None:
    client: ScriptedClient = wait_for(
        lambda: backend.clients[-1] if backend.clients else None, what="a client"
    )
    asyncio.run_coroutine_threadsafe(client.on_event(event), threaded.loop).result(5)


def linked(company: Any, threaded: ThreadedWorker, backend: ScriptedBackend) -> None:
    session = session_get(company)
    session.has_credentials, session.linked_jid, session.linked_phone = True, JID, "+79001234567"
    session.status = SessionStatus.RECONNECTING
    session.save()
    linking.session_reconnect(company=company, actor=SYSTEM)
    wait_status(company, SessionStatus.CONNECTED)


@pytest.mark.parametrize(
    ("reason", "code"),
    [("main_device_gone", errors.ACCOUNT_LOCKED), ("unknown_logout", errors.ACCOUNT_BANNED)],
)
def test_a_locked_or_banned_account_fails_and_its_credentials_are_gone(
    alice, scripted, reason, code
):
    threaded, backend = scripted
    linked(alice, threaded, backend)

    send(threaded, backend, base.LoggedOut(reason=reason, on_connect=True))

    session = wait_status(alice, SessionStatus.FAILED)
    assert session.last_error_code == code
    assert (session.has_credentials, session.linked_jid) == (False, "")
    assert JID in backend.deleted


@pytest.mark.parametrize(
    ("reason", "code"), [(403, errors.ACCOUNT_LOCKED), (406, errors.ACCOUNT_BANNED)]
)
def test_connect_failures_403_and_406_mean_the_same(alice, scripted, reason, code):
    threaded, backend = scripted
    linked(alice, threaded, backend)
    send(threaded, backend, base.ConnectFailure(reason=reason))
    assert wait_status(alice, SessionStatus.FAILED).last_error_code == code


def test_a_plain_logout_is_still_logged_out(alice, scripted):
    threaded, backend = scripted
    linked(alice, threaded, backend)
    send(threaded, backend, base.LoggedOut(reason="logged_out"))
    assert wait_status(alice, SessionStatus.LOGGED_OUT).last_error_code == errors.LOGGED_OUT


def test_a_refused_user_agent_is_not_retried_forever(alice, scripted):
    threaded, backend = scripted
    linked(alice, threaded, backend)
    clients_before = len(backend.clients)

    send(threaded, backend, base.ConnectFailure(reason=409, message="bad user agent"))

    session = wait_status(alice, SessionStatus.FAILED)
    assert session.last_error_code == errors.CONNECT_FAILURE
    assert "409" in session.last_error_message
    assert not session.wants_running
    assert len(backend.clients) == clients_before  # no reconnect was attempted


def test_a_passkey_request_ends_the_attempt_with_its_own_reason(alice, scripted):
    threaded, backend = scripted
    linking.session_start(company=alice, actor=SYSTEM)
    wait_status(alice, SessionStatus.QR_READY)

    send(threaded, backend, base.PasskeyRequired())

    session = wait_status(alice, SessionStatus.DISCONNECTED)
    assert session.last_error_code == errors.PASSKEY_REQUIRED
    attempt = PairingAttempt.objects.get(company=alice)
    assert (attempt.outcome, attempt.error_code) == (AttemptOutcome.FAILED, "PASSKEY_REQUIRED")


def test_a_link_that_arrives_after_a_reset_leaves_no_device_behind(alice, scripted):
    threaded, backend = scripted
    linking.session_start(company=alice, actor=SYSTEM)
    wait_status(alice, SessionStatus.QR_READY)
    client = backend.clients[-1]
    linking.credentials_reset(company=alice, actor=SYSTEM)

    # The phone finished scanning just as the reset went through.
    asyncio.run_coroutine_threadsafe(
        client.on_event(base.PairSuccess(jid=JID, phone="79001234567")), threaded.loop
    ).result(5)

    wait_for(lambda: JID in backend.deleted, what="the orphan device deleted")
    session = session_of(alice)
    assert (session.has_credentials, session.linked_jid) == (False, "")
