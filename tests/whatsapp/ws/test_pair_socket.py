"""/ws/v1/pair/{link_token}/: the end user's socket, authorised by a signed pairing link."""

from __future__ import annotations

import time
import types

import pytest

from tests.helpers import ALICE_PHONE
from tests.whatsapp.ws.helpers import connected, db, receive_until, refused_with
from whatsapp.models import Company, PairingAttempt
from whatsapp.services import links
from whatsapp.services.actors import CLI, SYSTEM

pytestmark = pytest.mark.django_db(transaction=True)


def _token(company: Company, **kwargs) -> str:
    return links.pairing_link_create(company=company, actor=CLI, **kwargs).token


async def test_a_valid_link_gets_its_company_status(alice):
    socket = await connected(f"/ws/v1/pair/{await db(_token, alice)}/")
    assert await socket.receive_json_from() == {
        "type": "status",
        "status": "disconnected",
        "linked_phone": None,
    }
    await socket.disconnect()


async def test_garbage_tokens_are_refused(alice):
    assert await refused_with("/ws/v1/pair/nonsense/") == 4401
    assert await refused_with("/ws/v1/pair/a:b/") == 4401


async def test_a_tampered_token_cannot_reach_another_company(alice, bob):
    from django.core import signing

    bobs = await db(_token, bob)
    body, signature = bobs.rsplit(":", 1)
    _, link_id, expires = signing.b64_decode(body.encode()).decode().split(":")
    forged_body = signing.b64_encode(f"{alice.pk}:{link_id}:{expires}".encode()).decode()
    assert await refused_with(f"/ws/v1/pair/{forged_body}:{signature}/") == 4401


async def test_an_expired_link_is_refused(alice, monkeypatch):
    token = await db(_token, alice, expires_in=60)
    later = types.SimpleNamespace(time=lambda: time.time() + 120)
    monkeypatch.setattr(links, "time", later)
    assert await refused_with(f"/ws/v1/pair/{token}/") == 4401


async def test_a_revoked_link_is_refused(alice):
    token = await db(_token, alice)
    await db(alice.rotate_link_secret)
    assert await refused_with(f"/ws/v1/pair/{token}/") == 4401


async def test_bobs_link_never_sees_alices_events(alice, bob, loop_worker):
    bobs = await connected(f"/ws/v1/pair/{await db(_token, bob)}/")
    await bobs.receive_json_from()
    from whatsapp.services import linking

    await db(linking.session_start, company=alice, actor=SYSTEM)
    assert await bobs.receive_nothing(timeout=0.3)
    await bobs.disconnect()


async def test_the_end_user_can_start_and_ask_for_a_code(alice, loop_worker):
    socket = await connected(f"/ws/v1/pair/{await db(_token, alice)}/")
    await socket.receive_json_from()
    await socket.send_json_to({"type": "start"})
    await receive_until(socket, "qr")
    await socket.send_json_to({"type": "request_pairing_code", "phone_number": ALICE_PHONE})
    code = await receive_until(socket, "pairing_code")
    assert code["phone_number"] == "+79001234567"
    attempt = await db(lambda: PairingAttempt.objects.filter(method="code").get())
    assert attempt.started_by.startswith("link:") and attempt.via_socket
    await socket.disconnect()


async def test_the_end_user_can_never_reset(alice, loop_worker):
    socket = await connected(f"/ws/v1/pair/{await db(_token, alice)}/")
    await socket.receive_json_from()
    await socket.send_json_to({"type": "reset_credentials"})
    error = await receive_until(socket, "error")
    assert error["error_code"] == "PERMISSION_DENIED"
    assert not await db(PairingAttempt.objects.filter(method="reset").exists)
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from() == {"type": "pong"}
    await socket.disconnect()


async def test_a_link_revoked_while_connected_can_no_longer_act(alice, loop_worker):
    socket = await connected(f"/ws/v1/pair/{await db(_token, alice)}/")
    await socket.receive_json_from()
    await db(alice.rotate_link_secret)
    await socket.send_json_to({"type": "start"})
    error = await receive_until(socket, "error")
    assert error["error_code"] == "PERMISSION_DENIED" and "revoked" in error["error"]
    await socket.disconnect()


async def test_the_end_user_cannot_replace_a_live_link_either(alice, loop_worker):
    """replace_existing deletes live credentials: that is a reset, which links may never do."""
    from whatsapp.sandbox import phone
    from whatsapp.services import linking

    code = await db(
        linking.pairing_code_request, company=alice, phone_number=ALICE_PHONE, actor=SYSTEM
    )
    await db(phone.link_with_code, ALICE_PHONE, code.pairing_code)
    socket = await connected(f"/ws/v1/pair/{await db(_token, alice)}/")
    await receive_until(socket, "connected")
    await socket.send_json_to(
        {
            "type": "request_pairing_code",
            "phone_number": "+1 415 555 2671",
            "replace_existing": True,
        }
    )
    error = await receive_until(socket, "error")
    assert error["error_code"] == "PERMISSION_DENIED"
    assert not await db(PairingAttempt.objects.filter(method="reset").exists)
    await socket.disconnect()
