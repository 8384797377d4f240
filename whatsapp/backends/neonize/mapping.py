"""neonize protobuf events -> `whatsapp.backends.base` dataclasses.

Pure functions, no client and no I/O, so every event type is tested with real neonize protobuf
objects. Runs inside the host process (importing neonize loads its Go runtime).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from google.protobuf.message import Message
from neonize.proto.Neonize_pb2 import (
    JID,
    ClientOutdated,
    Connected,
    ConnectFailure,
    ConnectFailureReason,
    Device,
    Disconnected,
    KeepAliveRestored,
    KeepAliveTimeout,
    LoggedOut,
    PairStatus,
    StreamReplaced,
    TemporaryBan,
)

from whatsapp.backends import base

# WhatsApp's QR refs: the first is shown 60 s, every next one 20 s, about 6 in all.
FIRST_QR_SECONDS = 60
NEXT_QR_SECONDS = 20
QR_REFS = 6
QR_WINDOW_SECONDS = FIRST_QR_SECONDS + NEXT_QR_SECONDS * (QR_REFS - 1)

# neonize flattens whatsmeow's HTTP-like ConnectFailureReason into its own enum; give callers the
# HTTP-like numbers back, they are what WhatsApp documents and what logs show.
_CONNECT_FAILURE_CODES: dict[int, int] = {
    ConnectFailureReason.GENERIC: 400,
    ConnectFailureReason.LOGGED_OUT: 401,
    ConnectFailureReason.TEMP_BANNED: 402,
    ConnectFailureReason.MAIN_DEVICE_GONE: 403,
    ConnectFailureReason.CLIENT_OUTDATED: 405,
    ConnectFailureReason.UNKNOWN_LOGOUT: 406,
    ConnectFailureReason.BAD_USER_AGENT: 409,
    ConnectFailureReason.INTERNAL_SERVER_ERROR: 500,
    ConnectFailureReason.EXPERIMENTAL: 501,
    ConnectFailureReason.SERVICE_UNAVAILABLE: 503,
}

# Same for TemporaryBan.Code (whatsmeow's TempBanReason numbers).
_TEMP_BAN_CODES: dict[int, int] = {
    TemporaryBan.SEND_TO_TOO_MANY_PEOPLE: 101,
    TemporaryBan.BLOCKED_BY_USERS: 102,
    TemporaryBan.CREATED_TOO_MANY_GROUPS: 103,
    TemporaryBan.SENT_TOO_MANY_SAME_MESSAGE: 104,
    TemporaryBan.BROADCAST_LIST: 106,
}


def jid_to_string(jid: JID) -> str:
    """whatsmeow's JID.String(): "user@server", "user:device@server" or "user.agent:device@server"."""
    if jid.RawAgent:
        return f"{jid.User}.{jid.RawAgent}:{jid.Device}@{jid.Server}"
    if jid.Device:
        return f"{jid.User}:{jid.Device}@{jid.Server}"
    return f"{jid.User}@{jid.Server}"


def jid_from_string(value: str) -> JID:
    """Parse a stored device JID back into neonize's JID, keeping the device number.

    neonize's own helper drops the device part, and the device row is keyed by the full JID,
    so resuming with it would look up a row that does not exist (and Go panics on that).
    """
    user_part, _, server = value.partition("@")
    if not server or not user_part:
        raise ValueError(f"not a JID: {value!r}")
    user_and_agent, _, device = user_part.partition(":")
    user, _, agent = user_and_agent.partition(".")
    return JID(
        User=user,
        RawAgent=int(agent or 0),
        Device=int(device or 0),
        Integrator=0,
        Server=server,
        IsEmpty=False,
    )


def connected_event(me: Device | None) -> base.Connected:
    """ConnectedEv plus what `get_me()` said (None when it could not be asked safely)."""
    if me is None or not me.HasField("JID") or not me.JID.User:
        return base.Connected()
    return base.Connected(jid=jid_to_string(me.JID), phone=me.JID.User)


def qr_event(code: str, index: int, first_seen: datetime, now: datetime) -> base.QRCode:
    """QR ref number `index` of a login socket whose first ref arrived at `first_seen`."""
    lifetime = FIRST_QR_SECONDS if index == 0 else NEXT_QR_SECONDS
    window_end = first_seen + timedelta(seconds=QR_WINDOW_SECONDS)
    expires_at = min(now + timedelta(seconds=lifetime), window_end)
    return base.QRCode(code=code, index=index, expires_at=expires_at, window_expires_at=window_end)


def event_from_proto(message: Message) -> base.BackendEvent | None:
    """The backend event for a neonize event, or None for events the service does not use.

    ConnectedEv is handled by `connected_event`, because its phone number comes from get_me().
    """
    if isinstance(message, Connected):
        return base.Connected()
    if isinstance(message, PairStatus):
        return _pair_status(message)
    if isinstance(message, LoggedOut):
        return base.LoggedOut(reason=_reason_name(message), on_connect=message.OnConnect)
    if isinstance(message, StreamReplaced):
        return base.StreamReplaced()
    if isinstance(message, TemporaryBan):
        # An unset Code reads as the enum's default (101): unknown is 0, never a made-up reason.
        code = (
            _TEMP_BAN_CODES.get(message.Code, int(message.Code)) if message.HasField("Code") else 0
        )
        return base.TemporaryBan(code=code, expire_seconds=int(message.Expire))
    if isinstance(message, ConnectFailure):
        return base.ConnectFailure(reason=_connect_failure_code(message), message=message.Message)
    if isinstance(message, ClientOutdated):
        return base.ClientOutdated()
    if isinstance(message, KeepAliveTimeout):
        return base.KeepAliveTimeout(error_count=int(message.ErrorCount))
    if isinstance(message, KeepAliveRestored):
        return base.KeepAliveRestored()
    if isinstance(message, Disconnected):
        return base.Disconnected()
    return None


# neonize's login-status callback: every item of whatsmeow's QR channel that is not a code.
# These are the only trace of failures on the login socket (docs/whatsapp.md, "Linking connects
# never return"); "success" needs nothing (PairStatus and ConnectedEv follow).
_LOGIN_STATUS_EVENTS: dict[str, base.BackendEvent] = {
    "timeout": base.PairingWindowClosed(),
    "err-client-outdated": base.ClientOutdated(),
    "passkey-request": base.PasskeyRequired(),
    "passkey-confirmation": base.PasskeyRequired(),
    "err-scanned-without-multidevice": base.PairError(
        "The phone scanned the code without multi-device support; update WhatsApp on the phone."
    ),
    "err-unexpected-state": base.PairError("WhatsApp's login socket was in an unexpected state."),
    "error": base.PairError("WhatsApp reported an error on the login socket."),
}


def login_status_event(status: str) -> base.BackendEvent | None:
    """The event for a login status of neonize's callback (None for success and codes)."""
    if status in ("success", "code", ""):
        return None
    return _LOGIN_STATUS_EVENTS.get(status, base.PairError(f"Unknown login status {status!r}."))


def _pair_status(message: PairStatus) -> base.PairSuccess | base.PairError:
    if message.Status == PairStatus.SUCCESS and message.ID.User:
        return base.PairSuccess(jid=jid_to_string(message.ID), phone=message.ID.User)
    return base.PairError(message=message.Error or "pairing failed")


def _connect_failure_code(message: ConnectFailure) -> int:
    # Go leaves Reason unset for codes neonize's enum does not know; 0 means "unknown".
    if not message.HasField("Reason"):
        return 0
    return _CONNECT_FAILURE_CODES.get(message.Reason, 0)


def _reason_name(message: LoggedOut) -> str:
    if not message.HasField("Reason"):
        return ""
    return ConnectFailureReason.Name(message.Reason).lower()


# The neonize event classes the host subscribes to (ConnectedEv is among them).
SUBSCRIBED_EVENTS: tuple[type[Message], ...] = (
    Connected,
    PairStatus,
    LoggedOut,
    StreamReplaced,
    TemporaryBan,
    ConnectFailure,
    ClientOutdated,
    KeepAliveTimeout,
    KeepAliveRestored,
    Disconnected,
)
