"""A neonize client for the protocol tests: prints what happens as JSON lines on stdout.

    python protocol_child.py --store S --uuid U [--jid user:dev@s.whatsapp.net]
        [--pair-phone NUMBER [--client-type 1] [--client-name linux]]
        [--props-os NAME] [--props-platform CHROME]

Lines: {"event": "qr", "data": ...}, {"event": "login_status", "status": ...},
{"event": "pair_code", "code": ...}, {"event": "pair_phone_error", "error": ...},
{"event": "pair_status", "status": ..., "jid": ...}, {"event": "connected", "me": ...},
{"event": "logged_out", "reason": ..., "on_connect": ...}, {"event": "stream_replaced"},
{"event": "temporary_ban", "code": ..., "expire": ...}, {"event": "client_outdated"},
{"event": "connect_failure", "reason": ...}, {"event": "disconnected"},
{"event": "connect_returned", "error": ...}.

Go and neonize print to fd 1 too: the JSON channel is the original stdout, moved to a private
descriptor, and fd 1 then points at stderr. The process exits when stdin closes.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
import threading
from typing import Any

_channel_fd = os.dup(1)
os.dup2(2, 1)
_channel = os.fdopen(_channel_fd, "w", buffering=1)
_lock = threading.Lock()


def say(event: str, **fields: Any) -> None:
    with _lock:
        _channel.write(json.dumps({"event": event, **fields}, default=str) + "\n")
        _channel.flush()


def jid_text(jid: Any) -> str:
    user, server, device = jid.User, jid.Server, jid.Device
    return f"{user}:{device}@{server}" if device else f"{user}@{server}"


def enum_name(event: Any, field: str) -> str:
    value = getattr(event, field)
    enum = event.DESCRIPTOR.fields_by_name[field].enum_type.values_by_number.get(value)
    return enum.name if enum is not None else str(value)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument("--uuid", required=True)
    parser.add_argument("--jid")
    parser.add_argument("--pair-phone")
    parser.add_argument("--client-type", type=int, default=1)
    parser.add_argument("--client-name", default="linux")
    parser.add_argument("--props-os")
    parser.add_argument("--props-platform")
    args = parser.parse_args()

    from neonize.client import NewClient
    from neonize.events import (
        ClientOutdatedEv,
        ConnectedEv,
        ConnectFailureEv,
        DisconnectedEv,
        LoggedOutEv,
        PairStatusEv,
        StreamReplacedEv,
        TemporaryBanEv,
    )
    from neonize.exc import PairPhoneError
    from neonize.proto.Neonize_pb2 import JID
    from neonize.proto.waCompanionReg.WAWebProtobufsCompanionReg_pb2 import DeviceProps
    from neonize.utils.enum import ClientName, ClientType

    class Client(NewClient):
        def _NewClient__onLoginStatus(self, uuid: int, status: int) -> None:  # noqa: N802
            say("login_status", status=ctypes.string_at(status).decode(errors="replace"))

    jid = None
    if args.jid:
        bare, server = args.jid.split("@", 1)
        user, _, device = bare.partition(":")
        jid = JID(
            User=user,
            Server=server,
            Device=int(device or 0),
            RawAgent=0,
            Integrator=0,
            IsEmpty=False,
        )
    props = None
    if args.props_os or args.props_platform:
        props = DeviceProps(
            os=args.props_os or "Emulator Test",
            platformType=DeviceProps.PlatformType.Value(args.props_platform or "CHROME"),
        )
    client = Client(args.store, jid=jid, props=props, uuid=args.uuid, new_device=jid is None)
    first_qr = threading.Event()

    def on_qr(_client: Any, data: bytes) -> None:
        say("qr", data=data.decode(errors="replace"))
        first_qr.set()

    client.event.qr(on_qr)

    @client.event(PairStatusEv)
    def on_pair(_client: Any, event: Any) -> None:
        say("pair_status", status=int(event.Status), jid=jid_text(event.ID), error=event.Error)

    @client.event(ConnectedEv)
    def on_connected(_client: Any, event: Any) -> None:
        me = client.me
        say("connected", me=jid_text(me.JID) if me is not None else None)

    @client.event(LoggedOutEv)
    def on_logged_out(_client: Any, event: Any) -> None:
        say("logged_out", reason=enum_name(event, "Reason"), on_connect=bool(event.OnConnect))

    @client.event(StreamReplacedEv)
    def on_replaced(_client: Any, event: Any) -> None:
        say("stream_replaced")

    @client.event(TemporaryBanEv)
    def on_ban(_client: Any, event: Any) -> None:
        say("temporary_ban", code=enum_name(event, "Code"), expire=int(event.Expire))

    @client.event(ClientOutdatedEv)
    def on_outdated(_client: Any, event: Any) -> None:
        say("client_outdated")

    @client.event(ConnectFailureEv)
    def on_failure(_client: Any, event: Any) -> None:
        say("connect_failure", reason=enum_name(event, "Reason"), message=event.Message)

    @client.event(DisconnectedEv)
    def on_disconnected(_client: Any, event: Any) -> None:
        say("disconnected")

    def pair_phone() -> None:
        if not first_qr.wait(60):
            say("pair_phone_error", error="no QR within 60 s")
            return
        try:
            code = client.PairPhone(
                args.pair_phone,
                True,
                client_name=ClientName(args.client_name),
                client_type=ClientType(args.client_type),
            )
        except PairPhoneError as error:
            say("pair_phone_error", error=str(error))
        else:
            say("pair_code", code=code)

    if args.pair_phone:
        threading.Thread(target=pair_phone, daemon=True).start()

    def run() -> None:
        try:
            client.connect()
        except Exception as error:
            say("connect_returned", error=f"{type(error).__name__}: {error}")
        else:
            say("connect_returned", error=None)

    threading.Thread(target=run, daemon=True).start()
    say("started", pid=os.getpid())
    sys.stdin.read()  # until the test closes our stdin
    os._exit(0)


if __name__ == "__main__":
    main()
