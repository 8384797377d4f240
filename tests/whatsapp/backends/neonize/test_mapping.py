"""neonize protobuf events -> backend events, built from the real neonize protobuf classes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from neonize.events import (
    ClientOutdatedEv,
    ConnectedEv,
    ConnectFailureEv,
    DisconnectedEv,
    KeepAliveRestoredEv,
    KeepAliveTimeoutEv,
    LoggedOutEv,
    MessageEv,
    PairStatusEv,
    StreamReplacedEv,
    TemporaryBanEv,
)
from neonize.proto.Neonize_pb2 import JID, ConnectFailureReason, Device

from whatsapp.backends import base
from whatsapp.backends.neonize import mapping

PHONE = "15551234567"


def device_jid(device: int = 12) -> JID:
    return JID(
        User=PHONE, Device=device, Server="s.whatsapp.net", RawAgent=0, Integrator=0, IsEmpty=False
    )


def test_it_maps_a_successful_pair_status_to_pair_success_with_the_full_device_jid() -> None:
    event = PairStatusEv(ID=device_jid(), Status=PairStatusEv.SUCCESS, Platform="android")

    assert mapping.event_from_proto(event) == base.PairSuccess(
        jid="15551234567:12@s.whatsapp.net", phone=PHONE
    )


def test_it_maps_a_failed_pair_status_to_pair_error() -> None:
    event = PairStatusEv(Status=PairStatusEv.ERROR, Error="bad signature")

    assert mapping.event_from_proto(event) == base.PairError(message="bad signature")


def test_it_maps_connected_with_the_phone_from_get_me() -> None:
    assert isinstance(mapping.event_from_proto(ConnectedEv(status=True)), base.Connected)

    me = Device(JID=device_jid(3), PushName="Salon")
    assert mapping.connected_event(me) == base.Connected(
        jid="15551234567:3@s.whatsapp.net", phone=PHONE
    )
    assert mapping.connected_event(None) == base.Connected()
    assert mapping.connected_event(Device()) == base.Connected()


def test_it_maps_logged_out_with_reason_and_on_connect() -> None:
    event = LoggedOutEv(OnConnect=True, Reason=ConnectFailureReason.LOGGED_OUT)

    assert mapping.event_from_proto(event) == base.LoggedOut(reason="logged_out", on_connect=True)
    assert mapping.event_from_proto(LoggedOutEv()) == base.LoggedOut(reason="", on_connect=False)


def test_it_maps_stream_replaced() -> None:
    assert mapping.event_from_proto(StreamReplacedEv()) == base.StreamReplaced()


def test_it_maps_temporary_ban_to_whatsapps_code_and_seconds() -> None:
    event = TemporaryBanEv(Code=TemporaryBanEv.BLOCKED_BY_USERS, Expire=3600)

    assert mapping.event_from_proto(event) == base.TemporaryBan(code=102, expire_seconds=3600)


def test_a_temporary_ban_without_a_code_reads_as_unknown_not_101() -> None:
    assert mapping.event_from_proto(TemporaryBanEv(Expire=60)) == base.TemporaryBan(
        code=0, expire_seconds=60
    )


@pytest.mark.parametrize(
    ("status", "event"),
    [
        ("timeout", base.PairingWindowClosed()),
        ("err-client-outdated", base.ClientOutdated()),
        ("passkey-request", base.PasskeyRequired()),
        ("passkey-confirmation", base.PasskeyRequired()),
    ],
)
def test_login_statuses_become_events(status: str, event: base.BackendEvent) -> None:
    assert mapping.login_status_event(status) == event


@pytest.mark.parametrize(
    "status", ["error", "err-unexpected-state", "err-scanned-without-multidevice", "new-thing"]
)
def test_login_socket_errors_fail_the_pairing(status: str) -> None:
    assert isinstance(mapping.login_status_event(status), base.PairError)


def test_a_successful_login_status_needs_no_event() -> None:
    assert mapping.login_status_event("success") is None


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        (ConnectFailureReason.LOGGED_OUT, 401),
        (ConnectFailureReason.TEMP_BANNED, 402),
        (ConnectFailureReason.MAIN_DEVICE_GONE, 403),
        (ConnectFailureReason.CLIENT_OUTDATED, 405),
        (ConnectFailureReason.UNKNOWN_LOGOUT, 406),
        (ConnectFailureReason.BAD_USER_AGENT, 409),
        (ConnectFailureReason.SERVICE_UNAVAILABLE, 503),
    ],
)
def test_it_maps_connect_failure_reasons_to_http_like_codes(reason: int, code: int) -> None:
    event = ConnectFailureEv(Reason=reason, Message="refused")

    assert mapping.event_from_proto(event) == base.ConnectFailure(reason=code, message="refused")


def test_it_maps_a_connect_failure_without_reason_to_zero() -> None:
    event = ConnectFailureEv(Message="unknown failure")

    assert not event.HasField("Reason")
    assert mapping.event_from_proto(event) == base.ConnectFailure(
        reason=0, message="unknown failure"
    )


def test_it_maps_client_outdated() -> None:
    assert mapping.event_from_proto(ClientOutdatedEv()) == base.ClientOutdated()


def test_it_maps_keepalive_timeout_and_restored() -> None:
    timeout = KeepAliveTimeoutEv(ErrorCount=3, LastSuccess=1700000000)

    assert mapping.event_from_proto(timeout) == base.KeepAliveTimeout(error_count=3)
    assert mapping.event_from_proto(KeepAliveRestoredEv()) == base.KeepAliveRestored()


def test_it_maps_disconnected() -> None:
    assert mapping.event_from_proto(DisconnectedEv(status=True)) == base.Disconnected()


def test_it_ignores_events_the_service_does_not_use() -> None:
    assert mapping.event_from_proto(MessageEv()) is None


def test_every_subscribed_event_type_maps_to_a_backend_event() -> None:
    for event_class in mapping.SUBSCRIBED_EVENTS:
        assert mapping.event_from_proto(event_class()) is not None, event_class


def test_qr_refs_live_60_then_20_seconds_inside_a_160_second_window() -> None:
    first = datetime(2025, 1, 1, tzinfo=UTC)

    qr0 = mapping.qr_event("2@ref0", 0, first, first)
    qr1 = mapping.qr_event("2@ref1", 1, first, first + timedelta(seconds=60))
    last = mapping.qr_event("2@ref5", 5, first, first + timedelta(seconds=150))

    assert qr0 == base.QRCode(
        code="2@ref0",
        index=0,
        expires_at=first + timedelta(seconds=60),
        window_expires_at=first + timedelta(seconds=160),
    )
    assert qr1.expires_at == first + timedelta(seconds=80)
    assert last.expires_at == first + timedelta(seconds=160)  # never past the window


@pytest.mark.parametrize(
    "value",
    [
        "15551234567:12@s.whatsapp.net",
        "15551234567@s.whatsapp.net",
        "15551234567.1:2@s.whatsapp.net",
    ],
)
def test_device_jids_survive_a_round_trip(value: str) -> None:
    assert mapping.jid_to_string(mapping.jid_from_string(value)) == value


def test_a_parsed_jid_keeps_its_device_number() -> None:
    jid = mapping.jid_from_string("15551234567:12@s.whatsapp.net")

    assert (jid.User, jid.Device, jid.Server) == (PHONE, 12, "s.whatsapp.net")
    with pytest.raises(ValueError):
        mapping.jid_from_string("not-a-jid")
