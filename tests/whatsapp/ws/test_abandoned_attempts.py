"""docs/design.md, "Linking rules": when the last subscriber of a company leaves during an attempt a socket
started, the attempt is cancelled after a grace period unless someone comes back; attempts
started over REST run on."""

from __future__ import annotations

import asyncio

import pytest

from tests.whatsapp.ws.helpers import connected, db, receive_until
from whatsapp.models import PairingAttempt, WhatsAppSession
from whatsapp.services import linking
from whatsapp.services.actors import SYSTEM

pytestmark = pytest.mark.django_db(transaction=True)

GRACE = 0.3
ALICE_WS = "/ws/v1/companies/alice/"


@pytest.fixture(autouse=True)
def _short_grace(settings):
    settings.WHATSAPP_ABANDON_GRACE = GRACE


async def _socket_attempt(key: str):
    socket = await connected(ALICE_WS, key=key)
    await socket.receive_json_from()
    await socket.send_json_to({"type": "start"})
    await receive_until(socket, "qr")
    return socket


async def _attempt() -> PairingAttempt:
    return await db(PairingAttempt.objects.get)


async def test_it_cancels_an_abandoned_socket_attempt(alice, alice_key, loop_worker):
    socket = await _socket_attempt(alice_key)
    await socket.disconnect()
    await asyncio.sleep(GRACE / 2)
    assert (await _attempt()).is_open, "cancelled before the grace period ended"
    await asyncio.sleep(GRACE + 0.5)
    assert (await _attempt()).outcome == "cancelled"
    session = await db(WhatsAppSession.objects.get, company=alice)
    assert session.status == "disconnected" and not session.wants_running


async def test_it_keeps_the_attempt_when_someone_comes_back(alice, alice_key, loop_worker):
    socket = await _socket_attempt(alice_key)
    await socket.disconnect()
    back = await connected(ALICE_WS, key=alice_key)
    await asyncio.sleep(GRACE + 0.5)
    assert (await _attempt()).is_open
    await back.disconnect()
    await asyncio.sleep(GRACE + 0.5)
    assert (await _attempt()).outcome == "cancelled"


async def test_it_waits_for_the_last_of_several_sockets(alice, alice_key, loop_worker):
    first = await _socket_attempt(alice_key)
    second = await connected(ALICE_WS, key=alice_key)
    await first.disconnect()
    await asyncio.sleep(GRACE + 0.5)
    assert (await _attempt()).is_open
    await second.disconnect()
    await asyncio.sleep(GRACE + 0.5)
    assert (await _attempt()).outcome == "cancelled"


async def test_rest_attempts_run_on_when_sockets_leave(alice, alice_key, loop_worker):
    await db(linking.session_start, company=alice, actor=SYSTEM)
    socket = await connected(ALICE_WS, key=alice_key)
    await socket.receive_json_from()
    await socket.disconnect()
    await asyncio.sleep(GRACE + 0.5)
    assert (await _attempt()).is_open


async def test_sockets_of_a_dead_web_process_stop_counting(alice, alice_key, loop_worker):
    """A crashed process never counts its sockets out; their entries go stale instead."""
    import time

    from django.core.cache import cache

    from whatsapp.services.presence import SUBSCRIBER_STALE, _subscribers_key

    socket = await _socket_attempt(alice_key)
    entries = await db(cache.get, _subscribers_key(alice.pk))
    entries["specific.dead-process!abc"] = time.time() - SUBSCRIBER_STALE - 1
    await db(cache.set, _subscribers_key(alice.pk), entries)
    await socket.disconnect()
    await asyncio.sleep(GRACE + 0.5)
    assert (await _attempt()).outcome == "cancelled"


async def test_a_live_socket_in_another_process_keeps_the_attempt(alice, alice_key, loop_worker):
    from whatsapp.services.presence import subscriber_seen

    socket = await _socket_attempt(alice_key)
    await db(subscriber_seen, alice.pk, "specific.other-process!xyz")
    await socket.disconnect()
    await asyncio.sleep(GRACE + 0.5)
    assert (await _attempt()).is_open
