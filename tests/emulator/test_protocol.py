"""The real neonize (whatsmeow) against the emulator's protocol layer, in child processes:
linking by QR and by code, resuming, logout from the phone, stream replaced, dropped sockets,
scripted failures, the login window's expiry and passkey requests."""

from __future__ import annotations

import sqlite3
import time

import pytest

from emulator.control import Emulator
from tests.emulator.helpers import ProtocolChild, ProtocolChildFactory

PHONE = "4915112345678"

pytestmark = pytest.mark.slow


def link_by_qr(
    emulator: Emulator, spawn: ProtocolChildFactory, phone: str = PHONE, name: str = "child"
) -> tuple[ProtocolChild, str]:
    child = spawn(emulator, name=name)
    qr = child.wait("qr")["data"]
    device = emulator.scan_qr(phone, qr)
    child.wait("connected")
    return child, device["jid"]


def test_qr_link_connects_and_stays_connected(
    emulator: Emulator, protocol_child: ProtocolChildFactory
) -> None:
    child = protocol_child(emulator)
    qr = child.wait("qr")["data"]
    assert qr.startswith("https://wa.me/settings/linked_devices#2@")
    window = emulator.open_windows()[0]
    assert qr.split("#", 1)[1].split(",")[0] == window["current_ref"]
    assert len(window["refs"]) == 6
    assert 155 < window["seconds_left"] <= 160

    device = emulator.scan_qr(f"+{PHONE}", qr)
    assert device["jid"] == f"{PHONE}:1@s.whatsapp.net"
    assert child.wait("login_status")["status"] == "success"
    pair = child.wait("pair_status")
    assert pair["status"] == 2 and pair["jid"] == device["jid"]
    connected = child.wait("connected")
    assert connected["me"] == device["jid"]
    with sqlite3.connect(child.store) as db:
        assert db.execute("select jid from whatsmeow_device").fetchall() == [(device["jid"],)]
    emulator.wait_for_connected(device["jid"], timeout=10)

    mark = child.mark()
    time.sleep(10)
    assert child.seen("disconnected", mark) == [] and child.seen("logged_out", mark) == []
    login = [c for c in emulator.connections() if c["client"]["kind"] == "login"]
    assert len(login) == 1 and login[0]["state"] == "active" and login[0]["closed_at"] is None
    assert {"encrypt/get/count", "passive/set/active"} <= set(login[0]["iqs"])
    assert emulator.devices(PHONE)[0]["prekeys"] >= 50
    register = [c for c in emulator.connections() if c["client"]["kind"] == "register"][0]
    assert register["outcome"] == "paired"
    assert register["client"]["device_props"]["os"] == "Neonize"


def test_code_link_records_what_the_client_sent(
    emulator: Emulator, protocol_child: ProtocolChildFactory
) -> None:
    child = protocol_child(
        emulator,
        pair_phone="+49 151 1234 5679",
        client_type=1,
        props_os="Pairing Service",
        props_platform="CHROME",
    )
    code = child.wait("pair_code")["code"]
    assert len(code) == 9 and code[4] == "-"
    request = emulator.wait_for("code-requested", phone="4915112345679", timeout=5)
    assert request["platform_id"] == "1"

    device = emulator.enter_code("4915112345679", code)
    assert (
        device["method"] == "code" and device["name"] == "Pairing Service"
    )  # the props name, not the code's
    pair = child.wait("pair_status")
    assert pair["status"] == 2 and pair["jid"] == "4915112345679:1@s.whatsapp.net"
    assert child.wait("connected")["me"] == "4915112345679:1@s.whatsapp.net"

    register = emulator.connections()[0]
    assert register["pair_code"]["platform_display"] == "Chrome (Linux)"
    assert register["pair_code"]["platform_id"] == "1"
    assert register["pair_code"]["push_notification"] is True
    assert register["client"]["device_props"]["os"] == "Pairing Service"
    assert register["client"]["device_props"]["platform_type"] == "CHROME"
    assert register["client"]["user_agent"]["platform"] == "WEB"


def test_wrong_code_can_be_typed_again(
    emulator: Emulator, protocol_child: ProtocolChildFactory
) -> None:
    child = protocol_child(emulator, pair_phone="4915112345670")
    code = child.wait("pair_code")["code"]
    wrong = ("2222" if not code.startswith("2222") else "3333") + code[4:]
    with pytest.raises(Exception, match="wrong pairing code"):
        emulator.enter_code("4915112345670", wrong)
    assert emulator.devices("4915112345670") == []
    assert child.seen("pair_status") == []
    device = emulator.enter_code("4915112345670", code.lower())  # typed again, right this time
    assert child.wait("connected")["me"] == device["jid"]


def test_resume_from_store_and_keepalive(
    emulator: Emulator, protocol_child: ProtocolChildFactory
) -> None:
    first, jid = link_by_qr(emulator, protocol_child, name="first")
    first.stop()
    emulator.wait_for("connection-closed", jid=jid, predicate=lambda e: e["outcome"] != "paired")

    mark = emulator.mark()
    again = protocol_child(emulator, name="again", store=first.store, jid=jid)
    assert again.wait("connected")["me"] == jid
    assert again.seen("qr") == []
    emulator.wait_for_connected(jid, since=mark, timeout=10)
    # whatsmeow pings every 20-30 s; the emulator answers.
    emulator.wait_for("keepalive", jid=jid, since=mark, timeout=35)
    time.sleep(1)
    assert again.seen("disconnected") == []


def test_logout_from_phone(emulator: Emulator, protocol_child: ProtocolChildFactory) -> None:
    child, jid = link_by_qr(emulator, protocol_child)
    emulator.unlink(PHONE, jid)
    logged_out = child.wait("logged_out")
    assert logged_out["on_connect"] is False
    assert emulator.devices(PHONE)[0]["active"] is False
    closed = emulator.wait_for("connection-closed", jid=jid, outcome="device-removed", timeout=5)
    assert closed


def test_second_login_replaces_the_first(
    emulator: Emulator, protocol_child: ProtocolChildFactory
) -> None:
    first, jid = link_by_qr(emulator, protocol_child, name="first")
    second = protocol_child(emulator, name="second", store=first.store, jid=jid)
    second.wait("connected")
    first.wait("stream_replaced", timeout=10)
    time.sleep(2)  # the replaced client must not come back
    assert first.seen("connected") == [first.seen("connected")[0]]
    live = [c for c in emulator.connections() if c["jid"] == jid and c["closed_at"] is None]
    assert len(live) == 1


def test_dropped_socket_reconnects(
    emulator: Emulator, protocol_child: ProtocolChildFactory
) -> None:
    child, jid = link_by_qr(emulator, protocol_child)
    mark, server_mark = child.mark(), emulator.mark()
    assert emulator.drop(jid) == 1
    child.wait("disconnected", since=mark, timeout=10)
    child.wait("connected", since=mark, timeout=20)
    emulator.wait_for_connected(jid, since=server_mark, timeout=10)


def test_temporary_ban(emulator: Emulator, protocol_child: ProtocolChildFactory) -> None:
    child, jid = link_by_qr(emulator, protocol_child)
    emulator.fail_next_login(402, phone=PHONE, code=102, expire=7200)
    mark = child.mark()
    emulator.drop(jid)
    ban = child.wait("temporary_ban", since=mark, timeout=20)
    assert ban["code"] == "BLOCKED_BY_USERS"  # whatsmeow's 102, in neonize's enum
    assert ban["expire"] == 7200
    time.sleep(2)  # a ban stops the reconnect loop
    assert child.seen("connected", mark) == []


@pytest.mark.parametrize(
    ("reason", "event", "name"),
    [
        (403, "logged_out", "MAIN_DEVICE_GONE"),
        (406, "logged_out", "UNKNOWN_LOGOUT"),
        (409, "connect_failure", "BAD_USER_AGENT"),
    ],
)
def test_login_failures(
    emulator: Emulator, protocol_child: ProtocolChildFactory, reason: int, event: str, name: str
) -> None:
    child, jid = link_by_qr(emulator, protocol_child)
    emulator.fail_next_login(reason, device=1, linking=False)
    mark = child.mark()
    emulator.drop(jid)
    seen = child.wait(event, since=mark, timeout=20)
    assert seen["reason"] == name
    if event == "logged_out":
        assert seen["on_connect"] is True


def test_client_outdated_while_linking(
    emulator: Emulator, protocol_child: ProtocolChildFactory
) -> None:
    emulator.fail_next_login(405, linking=True)
    child = protocol_child(emulator)
    assert child.wait("login_status", timeout=20)["status"] == "err-client-outdated"
    assert child.seen("qr") == []
    failure = emulator.wait_for("login-failure", reason=405, timeout=5)
    assert failure["linking"] is True


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("rate-overlimit", "info query returned status 429: rate-overlimit"),
        ("not-on-whatsapp", "info query returned status 404: item-not-found"),
    ],
)
def test_code_request_refused(
    emulator: Emulator, protocol_child: ProtocolChildFactory, kind: str, text: str
) -> None:
    emulator.fail_code_requests("4915112345671", kind)
    child = protocol_child(emulator, pair_phone="4915112345671")
    error = child.wait("pair_phone_error")["error"]
    assert text in error
    assert emulator.connections()[0]["pair_code"]["refused"] == kind


def test_display_name_must_be_browser_and_os(
    emulator: Emulator, protocol_child: ProtocolChildFactory
) -> None:
    child = protocol_child(emulator, pair_phone="4915112345672", client_type=0)  # "Unknown (Linux)"
    assert "status 400: bad-request" in child.wait("pair_phone_error")["error"]


def test_login_window_expires_by_speed(
    emulator: Emulator, protocol_child: ProtocolChildFactory
) -> None:
    emulator.speed = 20  # 160 s / 20 = 8 s
    child = protocol_child(emulator)
    child.wait("qr")
    started = time.monotonic()
    status = child.wait("login_status", timeout=15)
    elapsed = time.monotonic() - started
    assert status["status"] == "timeout"
    assert 6.5 < elapsed < 11, elapsed
    assert emulator.connections()[0]["outcome"] == "qr-timeout"


def test_passkey_request_reaches_the_client(
    emulator: Emulator, protocol_child: ProtocolChildFactory
) -> None:
    child = protocol_child(emulator)
    child.wait("qr")
    emulator.request_passkey()
    assert child.wait("login_status", timeout=10)["status"] == "passkey-request"


def test_reconnects_after_an_outage(
    emulator: Emulator, protocol_child: ProtocolChildFactory
) -> None:
    child, jid = link_by_qr(emulator, protocol_child)
    emulator.drop_next(device=jid, times=2)  # the next two reconnects die after the handshake
    mark, server_mark = child.mark(), emulator.mark()
    emulator.drop(jid)
    child.wait("connected", since=mark, timeout=25)  # whatsmeow backs off 0 s, 2 s, 4 s
    dropped = [e for e in emulator.events(server_mark) if e["kind"] == "dropped"]
    assert len(dropped) == 3
    emulator.wait_for_connected(jid, since=server_mark, timeout=5)
