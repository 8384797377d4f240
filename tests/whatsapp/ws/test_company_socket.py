"""/ws/v1/companies/{slug}/: staff and integrators."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from tests.helpers import ALICE_PHONE
from tests.whatsapp.ws.helpers import connected, db, receive_until, refused_with
from whatsapp.models import ApiKey, PairingAttempt
from whatsapp.sandbox import phone
from whatsapp.services import linking
from whatsapp.services.actors import SYSTEM

pytestmark = pytest.mark.django_db(transaction=True)

ALICE_WS = "/ws/v1/companies/alice/"


# --- who may connect -----------------------------------------------------------------------


async def test_alices_key_gets_alices_status_at_once(alice, alice_key):
    socket = await connected(ALICE_WS, key=alice_key)
    assert await socket.receive_json_from() == {
        "type": "status",
        "status": "disconnected",
        "linked_phone": None,
    }
    await socket.disconnect()


async def test_bobs_key_is_refused_on_alices_company(alice, bob, bob_key):
    assert await refused_with(ALICE_WS, key=bob_key) == 4404
    assert await refused_with("/ws/v1/companies/nobody/", key=bob_key) == 4404


async def test_no_credentials_are_refused(alice):
    assert await refused_with(ALICE_WS) == 4401


@pytest.mark.parametrize("header", [b"Bearer wps_wrong", b"Bearer", b"Token a b"])
async def test_bad_keys_are_refused(alice, header):
    assert await refused_with(ALICE_WS, headers=[(b"authorization", header)]) == 4401


async def test_a_revoked_key_is_refused(alice, alice_key):
    await db(ApiKey.objects.update, revoked_at=timezone.now())
    assert await refused_with(ALICE_WS, key=alice_key) == 4401


async def test_the_key_may_come_in_the_query_string(alice, bob, alice_key):
    socket = await connected(f"{ALICE_WS}?token={alice_key}")
    assert (await socket.receive_json_from())["type"] == "status"
    await socket.disconnect()
    assert await refused_with("/ws/v1/companies/bob/?token=" + alice_key) == 4404
    assert await refused_with(f"{ALICE_WS}?token=nope") == 4401


def _session_cookie(**user_fields) -> bytes:
    user = get_user_model().objects.create_user(
        username=user_fields.pop("username", "sam"), password="pw-12345678", **user_fields
    )
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        (b"http://testserver", b"testserver"),
        (b"http://127.0.0.1:8000", b"127.0.0.1:8000"),
        (b"https://localhost", b"localhost"),
    ],
)
async def test_a_staff_session_from_our_origin_connects(alice, origin, host):
    cookie = await db(_session_cookie, is_staff=True)
    socket = await connected(
        ALICE_WS, headers=[(b"cookie", cookie), (b"origin", origin), (b"host", host)]
    )
    assert (await socket.receive_json_from())["type"] == "status"
    await socket.disconnect()


async def test_a_staff_session_from_a_foreign_origin_is_refused(alice, settings):
    settings.ALLOWED_HOSTS = ["*"]  # even then, only the socket's own host counts
    cookie = await db(_session_cookie, is_staff=True)
    for origin in (b"https://evil.example", b"http://127.0.0.1:9999"):
        headers = [(b"cookie", cookie), (b"host", b"127.0.0.1:8000"), (b"origin", origin)]
        assert await refused_with(ALICE_WS, headers=headers) == 4403
    assert await refused_with(ALICE_WS, headers=[(b"cookie", cookie)]) == 4403


async def test_a_non_staff_session_is_refused(alice):
    cookie = await db(_session_cookie, username="eve")
    assert (
        await refused_with(
            ALICE_WS, headers=[(b"cookie", cookie), (b"origin", b"http://testserver")]
        )
        == 4401
    )


# --- what it receives ----------------------------------------------------------------------


async def test_a_reload_mid_attempt_gets_the_live_qr(alice, alice_key, loop_worker):
    await db(linking.session_start, company=alice, actor=SYSTEM)
    first = await connected(ALICE_WS, key=alice_key)
    await receive_until(first, "qr")
    await first.disconnect()
    socket = await connected(ALICE_WS, key=alice_key)
    assert await socket.receive_json_from() == {
        "type": "status",
        "status": "qr_ready",
        "linked_phone": None,
    }
    qr = await socket.receive_json_from()
    assert qr["type"] == "qr" and qr["qr"] and qr["image"].startswith("data:image/png")
    await socket.disconnect()


async def test_events_of_a_service_call_reach_the_socket(alice, alice_key, loop_worker):
    socket = await connected(ALICE_WS, key=alice_key)
    await socket.receive_json_from()
    code = await db(
        linking.pairing_code_request, company=alice, actor=SYSTEM, phone_number=ALICE_PHONE
    )
    event = await receive_until(socket, "pairing_code")
    assert event == {
        "type": "pairing_code",
        "pairing_code": code.pairing_code,
        "phone_number": "+79001234567",
        "expires_at": code.expires_at.isoformat(),
    }
    await db(phone.link_with_code, ALICE_PHONE, code.pairing_code)
    await receive_until(socket, "status", status="connected")
    assert await socket.receive_json_from() == {"type": "connected", "phone_number": "+79001234567"}
    await socket.disconnect()


async def test_bob_never_sees_alices_events(alice, bob, alice_key, bob_key, loop_worker):
    bobs = await connected("/ws/v1/companies/bob/", key=bob_key)
    await bobs.receive_json_from()
    alices = await connected(ALICE_WS, key=alice_key)
    await alices.receive_json_from()
    await alices.send_json_to({"type": "request_pairing_code", "phone_number": ALICE_PHONE})
    await receive_until(alices, "pairing_code")
    assert await bobs.receive_nothing(timeout=0.3)
    await alices.disconnect()
    await bobs.disconnect()


# --- what it may do ------------------------------------------------------------------------


async def test_it_starts_linking_by_qr(alice, alice_key, loop_worker):
    socket = await connected(ALICE_WS, key=alice_key)
    await socket.receive_json_from()
    await socket.send_json_to({"type": "start"})
    await receive_until(socket, "status", status="connecting")
    await receive_until(socket, "qr")
    attempt = await db(PairingAttempt.objects.get)
    assert attempt.via_socket and attempt.method == "qr"
    await socket.disconnect()


async def test_it_requests_a_pairing_code_and_repeats_it(alice, alice_key, loop_worker):
    socket = await connected(ALICE_WS, key=alice_key)
    await socket.receive_json_from()
    await socket.send_json_to({"type": "request_pairing_code", "phone_number": ALICE_PHONE})
    first = await receive_until(socket, "pairing_code")
    await socket.send_json_to({"type": "request_pairing_code", "phone_number": "79001234567"})
    again = await receive_until(socket, "pairing_code")
    assert again["pairing_code"] == first["pairing_code"]
    assert (await db(PairingAttempt.objects.get)).via_socket
    await socket.disconnect()


async def test_service_errors_come_back_as_error_messages(alice, alice_key, loop_worker):
    socket = await connected(ALICE_WS, key=alice_key)
    await socket.receive_json_from()
    await socket.send_json_to(
        {"type": "request_pairing_code", "phone_number": "8 900 123 45 67", "request_id": "r1"}
    )
    error = await receive_until(socket, "error")
    assert error["error_code"] == "INVALID_PHONE" and error["request_id"] == "r1"
    assert error["error"]
    await socket.send_json_to({"type": "request_pairing_code"})
    assert (await receive_until(socket, "error"))["error_code"] == "VALIDATION_ERROR"
    await socket.send_json_to(
        {"type": "request_pairing_code", "phone_number": ALICE_PHONE, "replace_existing": "yes"}
    )
    assert (await receive_until(socket, "error"))["error_code"] == "VALIDATION_ERROR"
    await socket.disconnect()


async def test_it_resets_credentials(alice, alice_key, loop_worker):
    code = await db(
        linking.pairing_code_request, company=alice, actor=SYSTEM, phone_number=ALICE_PHONE
    )
    await db(phone.link_with_code, ALICE_PHONE, code.pairing_code)
    socket = await connected(ALICE_WS, key=alice_key)
    await receive_until(socket, "status", status="connected", within=5)
    await socket.send_json_to({"type": "reset_credentials"})
    await receive_until(socket, "credentials_reset")
    session = await db(lambda: alice.session.__class__.objects.get(company=alice))
    assert not session.has_credentials and session.status == "disconnected"
    await socket.disconnect()


async def test_writes_are_rate_limited_per_company(alice, alice_key, loop_worker, settings):
    settings.API_THROTTLE_WRITES_PER_MINUTE = 1
    socket = await connected(ALICE_WS, key=alice_key)
    await socket.receive_json_from()
    await socket.send_json_to({"type": "start"})
    await receive_until(socket, "qr")
    await socket.send_json_to({"type": "start"})
    error = await receive_until(socket, "error")
    assert error["error_code"] == "RATE_LIMITED" and error["retry_after"] >= 1
    await socket.disconnect()


# --- bad frames ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        "{not json",
        "[1, 2]",
        '"ping"',
        '{"no": "type"}',
        '{"type": 5}',
        '{"type": "explode"}',
        json.dumps({"type": "ping", "pad": "x" * 5000}),
    ],
)
async def test_bad_frames_get_an_error_and_the_socket_stays_usable(alice, alice_key, frame):
    socket = await connected(ALICE_WS, key=alice_key)
    await socket.receive_json_from()
    await socket.send_to(text_data=frame)
    error = await socket.receive_json_from()
    assert error["type"] == "error" and error["error_code"] == "VALIDATION_ERROR", error
    await socket.send_json_to({"type": "ping", "request_id": 7})
    assert await socket.receive_json_from() == {"type": "pong", "request_id": 7}
    await socket.disconnect()


async def test_binary_frames_are_handled_too(alice, alice_key):
    socket = await connected(ALICE_WS, key=alice_key)
    await socket.receive_json_from()
    await socket.send_to(bytes_data=b"\xff\xfe")
    assert (await socket.receive_json_from())["error_code"] == "VALIDATION_ERROR"
    await socket.send_to(bytes_data=b'{"type": "ping"}')
    assert await socket.receive_json_from() == {"type": "pong"}
    await socket.disconnect()


@pytest.mark.parametrize("path", ["/ws/v1/nothing/", "/ws/v1/companies/alice", "/elsewhere"])
async def test_unknown_paths_are_refused_with_4404_not_an_error(alice, alice_key, path):
    assert await refused_with(path, key=alice_key) == 4404


async def test_a_token_in_the_url_is_never_logged(alice, alice_key, caplog):
    caplog.set_level("DEBUG")
    socket = await connected(f"{ALICE_WS}?token={alice_key}")
    await socket.receive_json_from()
    await socket.send_json_to({"type": "explode"})
    await socket.receive_json_from()
    await socket.disconnect()
    assert await refused_with(f"/ws/v1/companies/bob/?token={alice_key}x") == 4401
    assert alice_key not in caplog.text


async def test_a_key_revoked_after_the_handshake_loses_its_power(alice, alice_key, loop_worker):
    socket = await connected(ALICE_WS, key=alice_key)
    await socket.receive_json_from()
    await db(ApiKey.objects.update, revoked_at=timezone.now())
    await socket.send_json_to({"type": "reset_credentials"})
    error = await socket.receive_json_from()
    assert error["type"] == "error" and error["error_code"] == "NOT_AUTHENTICATED"
    assert (await socket.receive_output())["type"] == "websocket.close"
    assert not await db(PairingAttempt.objects.filter(method="reset").exists)


async def test_deeply_nested_json_is_a_validation_error_and_the_socket_lives(alice, alice_key):
    socket = await connected(ALICE_WS, key=alice_key)
    await socket.receive_json_from()
    await socket.send_to(text_data="[" * 3000)
    assert (await socket.receive_json_from())["error_code"] == "VALIDATION_ERROR"
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from() == {"type": "pong"}
    await socket.disconnect()
