"""The WhatsApp server's side of the conversation, one `Session` per client connection.

`Server.handle(conn)` is the handler the transport runs after each Noise handshake. A new device
(its ClientPayload carries `devicePairingData`) gets a login window: six QR refs in
`<pair-device>`, open for (60 + 5 x 20) s / speed, closed by dropping the socket (whatsmeow reads
that as the QR "timeout"). Inside the window the client may ask for a pairing code
(`link_code_companion_reg` / `companion_hello`). The phone (`scan_qr`, `enter_code`) completes
the link with `pair-success`; after the client's `pair-device-sign` the server sends
`<stream:error code="515"/>` and the client logs in again. A login (`username` + `device`)
of a linked device gets `<success>`, then answers to the client's prekey and passive IQs, so
whatsmeow emits Connected, and to its keepalives. Scripted failures (`FailureRule`,
`CodeFailure`) replace those answers.

Everything here runs on the transport's asyncio loop; `emulator/control.py` calls in from other
threads through `asyncio.run_coroutine_threadsafe`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from emulator import phone as phones_mod
from emulator.binary import JID, Node
from emulator.phone import Account, LinkedDevice, PhoneError, Phones, PrimaryHello
from emulator.transport import ConnectionClosedError

log = logging.getLogger("emulator.server")

SERVER_JID = JID("", "s.whatsapp.net")

QR_REFS = 6
QR_FIRST_SECONDS = 60.0
QR_NEXT_SECONDS = 20.0
# After a <failure> or a <stream:error>, how long the socket stays open so that whatsmeow handles
# the node (and marks the disconnect as expected) before it sees the socket close.
CLOSE_GRACE_SECONDS = 1.0
# How long the phone waits for the client's answers while linking.
CLIENT_ANSWER_SECONDS = 30.0

# Failure reasons the emulator can script at login (whatsmeow events.ConnectFailureReason);
# DROP closes the socket right after the handshake instead.
DROP = 0
FAILURE_REASONS = {DROP, 401, 402, 403, 405, 406, 409, 500, 503}
# Pair-code request failures: kind -> (IQ error code, text); "timeout" never answers.
CODE_FAILURES: dict[str, tuple[int, str] | None] = {
    "rate-overlimit": (429, "rate-overlimit"),
    "not-on-whatsapp": (404, "item-not-found"),
    "bad-request": (400, "bad-request"),
    "timeout": None,
}

_BROWSERS = {"chrome", "edge", "firefox", "ie", "opera", "safari", "electron", "uwp", "desktop"}
_SYSTEMS = {"linux", "windows", "windows nt", "mac os", "macos", "ubuntu", "android", "chrome os"}
_DISPLAY_NAME = re.compile(r"^\s*(?P<browser>[^()]+?)\s*\((?P<os>[^()]+)\)\s*$")


class ClientConnection(Protocol):
    """What the server needs of a connection (`emulator.transport.Connection`, or a fake)."""

    client_payload: Any
    client_static: bytes

    @property
    def closed(self) -> bool: ...

    async def recv_node(self) -> Node: ...

    async def send_node(self, node: Node) -> None: ...

    async def close(self) -> None: ...


class EmulatorError(Exception):
    """A control command cannot be done (nothing to scan, no such device, client refused...)."""


def display_name_ok(name: str) -> bool:
    """WhatsApp accepts only `Browser (OS)` with common browsers and systems (case-insensitive)."""
    match = _DISPLAY_NAME.match(name)
    if match is None:
        return False
    return (
        match.group("browser").strip().lower() in _BROWSERS
        and match.group("os").strip().lower() in _SYSTEMS
    )


def _enum_name(message: Any, field_name: str) -> str:
    descriptor = message.DESCRIPTOR.fields_by_name[field_name].enum_type
    number = getattr(message, field_name)
    value = descriptor.values_by_number.get(number)
    return value.name if value is not None else str(number)


def _version(message: Any) -> str:
    return f"{message.primary}.{message.secondary}.{message.tertiary}"


def describe_payload(payload: Any) -> dict[str, Any]:
    """What a client said about itself in its ClientPayload, as plain JSON."""
    agent = payload.userAgent
    info: dict[str, Any] = {
        "kind": "register" if payload.HasField("devicePairingData") else "login",
        "passive": payload.passive,
        "pull": payload.pull,
        "user_agent": {
            "platform": _enum_name(agent, "platform"),
            "app_version": _version(agent.appVersion),
            "os_version": agent.osVersion,
            "os_build_number": agent.osBuildNumber,
            "device": agent.device,
            "manufacturer": agent.manufacturer,
            "release_channel": _enum_name(agent, "releaseChannel"),
            "locale": f"{agent.localeLanguageIso6391}-{agent.localeCountryIso31661Alpha2}",
            "mcc": agent.mcc,
            "mnc": agent.mnc,
        },
        "web_sub_platform": _enum_name(payload.webInfo, "webSubPlatform"),
        "connect_type": _enum_name(payload, "connectType"),
        "connect_reason": _enum_name(payload, "connectReason"),
        "device_props": None,
    }
    if payload.HasField("username"):
        info["username"] = str(payload.username)
        info["device"] = payload.device
    if payload.HasField("devicePairingData"):
        data = payload.devicePairingData
        info["identity_public"] = base64.b64encode(data.eIdent).decode()
        info["registration_id"] = int.from_bytes(data.eRegid, "big")
        try:
            from neonize.proto.waCompanionReg.WAWebProtobufsCompanionReg_pb2 import DeviceProps

            props = DeviceProps.FromString(data.deviceProps)
            info["device_props"] = {
                "os": props.os,
                "version": _version(props.version),
                "platform_type": _enum_name(props, "platformType"),
                "require_full_sync": props.requireFullSync,
            }
        except Exception as error:  # a client sending garbage is worth a record, not a crash
            info["device_props"] = {"error": f"{type(error).__name__}: {error}"}
    return info


# --- scripted failures --------------------------------------------------------------------


@dataclass
class FailureRule:
    """`<failure reason=...>` instead of the normal start of a connection (reason DROP: the
    socket closes without a word).

    Matches by phone and/or device number (logins only: a new device has no number yet), by
    kind (`linking=True`: only new devices; False: only logins; None: both). `times=None`
    repeats until cleared."""

    reason: int
    phone: str | None = None
    device: int | None = None
    linking: bool | None = None
    code: int | None = None
    expire: int | None = None
    times: int | None = 1
    message: str | None = None

    def matches(self, registering: bool, user: str | None, device: int | None) -> bool:
        if self.linking is not None and self.linking != registering:
            return False
        if self.phone is not None and self.phone != user:
            return False
        return self.device is None or self.device == device

    def node(self) -> Node:
        attrs: dict[str, Any] = {"reason": str(self.reason), "location": "emu"}
        if self.reason == 402:
            attrs["code"] = str(self.code if self.code is not None else 101)
            attrs["expire"] = str(self.expire if self.expire is not None else 3600)
        elif self.reason == 403:
            attrs["logout_message_header"] = "Account locked"
            attrs["logout_message_subtext"] = "This account is locked (emulator)."
        if self.message:
            attrs["message"] = self.message
        return Node("failure", attrs)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CodeFailure:
    phone: str
    kind: str
    times: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# --- per-connection state -----------------------------------------------------------------


@dataclass
class PendingCode:
    """The latest `companion_hello` of a window: what the phone needs to check a typed code."""

    phone: str
    ref: str
    wrapped_companion_ephemeral: bytes
    platform_id: str
    platform_display: str
    push_notification: bool
    requested_at: float = field(default_factory=time.time)
    hello: PrimaryHello | None = None
    finish: asyncio.Future[Node] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "phone": self.phone,
            "ref": self.ref,
            "platform_id": self.platform_id,
            "platform_display": self.platform_display,
            "push_notification": self.push_notification,
            "requested_at": self.requested_at,
            "entered": self.hello is not None,
        }


@dataclass
class LoginWindow:
    refs: list[str]
    opened_at: float
    seconds: float
    speed: float
    code: PendingCode | None = None
    pairing: bool = False
    paired: bool = False
    closed: bool = False
    task: asyncio.Task[None] | None = None

    @property
    def closes_at(self) -> float:
        return self.opened_at + self.seconds

    def current_ref(self, now: float | None = None) -> str:
        """The ref the server's schedule shows now (60 s, then 20 s each, over speed)."""
        elapsed = ((now or time.time()) - self.opened_at) * self.speed
        if elapsed < QR_FIRST_SECONDS:
            return self.refs[0]
        index = 1 + int((elapsed - QR_FIRST_SECONDS) // QR_NEXT_SECONDS)
        return self.refs[min(index, len(self.refs) - 1)]


@dataclass
class ConnectionRecord:
    """What one client connection sent and what became of it (for tests and `connections()`)."""

    id: int
    opened_at: float
    client: dict[str, Any]
    noise_public: str
    headers: dict[str, str] = field(default_factory=dict)
    jid: str | None = None
    state: str = "open"
    outcome: str | None = None
    closed_at: float | None = None
    window: dict[str, Any] | None = None
    pair_code: dict[str, Any] | None = None
    keepalives: int = 0
    iqs: list[str] = field(default_factory=list)
    unknown_iqs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["iqs"] = list(self.iqs)
        data["unknown_iqs"] = list(self.unknown_iqs)
        data["headers"] = dict(self.headers)
        return data


class Session:
    def __init__(self, server: Server, conn: ClientConnection, record: ConnectionRecord) -> None:
        self.server = server
        self.conn = conn
        self.record = record
        self.registering = record.client.get("kind") == "register"
        self.device: LinkedDevice | None = None
        self.window: LoginWindow | None = None
        self.pending: dict[str, asyncio.Future[Node]] = {}
        self.closed = False
        self._send_lock = asyncio.Lock()
        self._close_task: asyncio.Task[None] | None = None

    @property
    def id(self) -> int:
        return self.record.id

    async def send(self, node: Node) -> None:
        async with self._send_lock:
            if self.closed or self.conn.closed:
                raise ConnectionClosedError("connection is closed")
            await self.conn.send_node(node)

    async def request(self, node: Node) -> Node:
        """Send an IQ and wait (CLIENT_ANSWER_SECONDS) for the client's result or error."""
        iq_id = str(node.attrs["id"])
        future: asyncio.Future[Node] = asyncio.get_running_loop().create_future()
        self.pending[iq_id] = future
        try:
            await self.send(node)
            return await asyncio.wait_for(future, CLIENT_ANSWER_SECONDS)
        finally:
            self.pending.pop(iq_id, None)

    async def close(self, outcome: str | None = None) -> None:
        if outcome is not None and self.record.outcome is None:
            self.record.outcome = outcome
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            await self.conn.close()

    def close_later(self, outcome: str | None = None, delay: float = CLOSE_GRACE_SECONDS) -> None:
        if outcome is not None and self.record.outcome is None:
            self.record.outcome = outcome

        async def later() -> None:
            await asyncio.sleep(delay)
            await self.close()

        if self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(later())


# --- the server ---------------------------------------------------------------------------


class Server:
    def __init__(self, phones: Phones | None = None, *, speed: float = 1.0) -> None:
        self.phones = phones or Phones()
        self.speed = speed
        self.records: list[ConnectionRecord] = []
        self.sessions: dict[int, Session] = {}
        self.failures: list[FailureRule] = []
        self.code_failures: list[CodeFailure] = []
        self.events: list[dict[str, Any]] = []
        self.changed = threading.Condition()
        self._ids = itertools.count(1)
        self._iq_ids = itertools.count(1)
        self._iq_prefix = os.urandom(3).hex()
        self._live: dict[str, Session] = {}  # device JID -> its logged-in session
        self.listeners: list[Callable[[dict[str, Any]], None]] = []

    # --- bookkeeping ------------------------------------------------------------------

    def emit(self, kind: str, /, **data: Any) -> None:
        event = {"kind": kind, "at": time.time(), **data}
        log.debug("event %s", event)
        with self.changed:
            event["seq"] = len(self.events)
            self.events.append(event)
            self.changed.notify_all()
        for listener in list(self.listeners):
            with contextlib.suppress(Exception):
                listener(event)

    def _next_iq_id(self) -> str:
        return f"{self._iq_prefix}.{next(self._iq_ids)}"

    @staticmethod
    def _now() -> str:
        return str(int(time.time()))

    # --- the transport's handler ------------------------------------------------------

    async def handle(self, conn: ClientConnection) -> None:
        record = ConnectionRecord(
            id=next(self._ids),
            opened_at=time.time(),
            client=describe_payload(conn.client_payload),
            noise_public=base64.b64encode(conn.client_static).decode(),
            headers=dict(getattr(conn, "request_headers", None) or {}),
        )
        self.records.append(record)
        session = Session(self, conn, record)
        self.sessions[session.id] = session
        self.emit("connection-opened", connection=record.id, client=record.client)
        try:
            if await self._scripted_failure(session):
                return
            if session.registering:
                await self._open_window(session)
            elif not await self._login(session):
                return
            await self._read_loop(session)
        except ConnectionClosedError:
            pass
        except Exception:
            log.exception("connection %s failed", record.id)
            record.outcome = record.outcome or "server-error"
        finally:
            await self._finish(session)

    async def _read_loop(self, session: Session) -> None:
        while not session.closed:
            try:
                node = await session.conn.recv_node()
            except ConnectionClosedError:
                return
            try:
                await self._on_node(session, node)
            except ConnectionClosedError:
                return
            except Exception:
                log.exception("connection %s: handling <%s> failed", session.id, node.tag)

    async def _finish(self, session: Session) -> None:
        record = session.record
        session.closed = True
        with contextlib.suppress(Exception):
            await session.conn.close()
        window = session.window
        if window is not None and not window.closed:
            window.closed = True
            if window.task is not None and window.task is not asyncio.current_task():
                window.task.cancel()
            if window.code is not None and window.code.finish is not None:
                if not window.code.finish.done():
                    window.code.finish.set_exception(ConnectionClosedError("client went away"))
        for future in session.pending.values():
            if not future.done():
                future.set_exception(ConnectionClosedError("client went away"))
        if record.jid is not None and self._live.get(record.jid) is session:
            del self._live[record.jid]
        self.sessions.pop(session.id, None)
        record.state = "closed"
        record.closed_at = time.time()
        if record.outcome is None:
            record.outcome = "client-closed"
        self.emit("connection-closed", connection=record.id, jid=record.jid, outcome=record.outcome)

    async def _scripted_failure(self, session: Session) -> bool:
        client = session.record.client
        user = client.get("username")
        device = client.get("device")
        for rule in list(self.failures):
            if not rule.matches(session.registering, user, device):
                continue
            if rule.times is not None:
                rule.times -= 1
                if rule.times <= 0:
                    self.failures.remove(rule)
            session.record.jid = str(JID(user, "s.whatsapp.net", device or 0)) if user else None
            if rule.reason == DROP:
                self.emit("dropped", connection=session.id, jid=session.record.jid)
                await session.close("dropped")
                return True
            await session.send(rule.node())
            self.emit(
                "login-failure",
                connection=session.id,
                reason=rule.reason,
                jid=session.record.jid,
                linking=session.registering,
            )
            await self._linger(session, f"failure-{rule.reason}")
            return True
        return False

    async def _linger(self, session: Session, outcome: str) -> None:
        """Keep reading (and dropping) for a moment, then close: whatsmeow must handle the last
        node before it sees the socket go."""
        session.record.outcome = session.record.outcome or outcome
        with contextlib.suppress(TimeoutError, ConnectionClosedError):
            async with asyncio.timeout(CLOSE_GRACE_SECONDS):
                while True:
                    await session.conn.recv_node()
        await session.close()

    # --- linking: the login window --------------------------------------------------------

    async def _open_window(self, session: Session) -> None:
        refs = [f"2@{base64.b64encode(os.urandom(36)).decode()}" for _ in range(QR_REFS)]
        seconds = (QR_FIRST_SECONDS + (QR_REFS - 1) * QR_NEXT_SECONDS) / self.speed
        window = LoginWindow(refs=refs, opened_at=time.time(), seconds=seconds, speed=self.speed)
        session.window = window
        session.record.window = {
            "refs": list(refs),
            "seconds": seconds,
            "opened_at": window.opened_at,
        }
        iq_id = self._next_iq_id()
        await session.send(
            Node(
                "iq",
                {"from": SERVER_JID, "type": "set", "id": iq_id, "xmlns": "md"},
                [Node("pair-device", {}, [Node("ref", {}, ref.encode()) for ref in refs])],
            )
        )
        window.task = asyncio.get_running_loop().create_task(self._expire(session, window))
        self.emit(
            "window-opened",
            connection=session.id,
            refs=list(refs),
            seconds=seconds,
            client=session.record.client,
        )

    async def _expire(self, session: Session, window: LoginWindow) -> None:
        await asyncio.sleep(max(0.0, window.closes_at - time.time()))
        if window.pairing or window.paired or window.closed:
            return  # a link in progress: _pairing_failed re-arms the timer
        window.closed = True
        self.emit("window-expired", connection=session.id)
        await session.close("qr-timeout")

    def _pairing_failed(self, session: Session) -> None:
        window = session.window
        if window is None:
            return
        window.pairing = False
        if not window.closed and (window.task is None or window.task.done()):
            window.task = asyncio.get_running_loop().create_task(self._expire(session, window))

    def open_windows(self) -> list[dict[str, Any]]:
        now = time.time()
        result = []
        for session in self.sessions.values():
            window = session.window
            if window is None or window.closed or window.paired or session.closed:
                continue
            result.append(
                {
                    "connection": session.id,
                    "refs": list(window.refs),
                    "current_ref": window.current_ref(now),
                    "opened_at": window.opened_at,
                    "closes_at": window.closes_at,
                    "seconds_left": max(0.0, window.closes_at - now),
                    "pairing": window.pairing,
                    "code": window.code.to_dict() if window.code else None,
                    "client": session.record.client,
                }
            )
        return result

    def _window_for_ref(self, ref: str) -> Session | None:
        for session in self.sessions.values():
            window = session.window
            if window is not None and not window.closed and ref in window.refs:
                return session
        return None

    # --- linking: the phone's actions --------------------------------------------------

    async def scan_qr(self, phone: str, qr: str) -> LinkedDevice:
        data = phones_mod.parse_qr(qr)
        session = self._window_for_ref(data.ref)
        if session is None or session.window is None:
            raise EmulatorError("this QR code is not (or no longer) valid")
        if session.window.pairing or session.window.paired:
            raise EmulatorError("this login window is already being linked")
        if data.noise_public != session.conn.client_static:
            raise EmulatorError("the QR's noise key is not the connection's")
        registered = session.record.client.get("identity_public")
        if registered and base64.b64decode(registered) != data.identity_public:
            raise EmulatorError("the QR's identity key is not the one the client registered")
        account = self.phones.account(phone)
        props = session.record.client.get("device_props") or {}
        return await self._pair(
            session,
            account,
            companion_identity=data.identity_public,
            adv_secret=data.adv_secret,
            method="qr",
            name=props.get("os") or "Unknown",
        )

    async def enter_code(self, phone: str, code: str) -> LinkedDevice:
        number = phones_mod.digits(phone)
        candidates = [
            session
            for session in self.sessions.values()
            if session.window is not None
            and not session.window.closed
            and session.window.code is not None
            and session.window.code.phone == number
            and not session.window.paired
        ]
        if not candidates:
            raise EmulatorError(f"no pairing code is waiting for {number}")
        session = max(
            candidates,
            key=lambda s: s.window.code.requested_at if s.window and s.window.code else 0,
        )
        window = session.window
        assert window is not None and window.code is not None
        pending = window.code
        if window.pairing or window.paired:
            raise EmulatorError("this login window is already being linked")
        account = self.phones.account(number)
        try:
            hello = phones_mod.primary_hello(code, pending.wrapped_companion_ephemeral)
        except PhoneError as error:
            raise EmulatorError(str(error)) from None
        pending.hello = hello
        pending.finish = asyncio.get_running_loop().create_future()
        window.pairing = True
        try:
            await session.send(
                Node(
                    "notification",
                    {
                        "from": SERVER_JID,
                        "type": "link_code_companion_reg",
                        "id": self._next_iq_id(),
                        "t": self._now(),
                    },
                    [
                        Node(
                            "link_code_companion_reg",
                            {"jid": account.user_jid(), "stage": "primary_hello"},
                            [
                                Node(
                                    "link_code_pairing_wrapped_primary_ephemeral_pub",
                                    {},
                                    hello.wrapped_primary_ephemeral,
                                ),
                                Node("primary_identity_pub", {}, account.identity.public),
                                Node("link_code_pairing_ref", {}, pending.ref.encode()),
                            ],
                        )
                    ],
                )
            )
            self.emit("code-entered", connection=session.id, phone=number)
            try:
                finish = await asyncio.wait_for(pending.finish, CLIENT_ANSWER_SECONDS)
            except TimeoutError:
                raise EmulatorError("the client did not send companion_finish") from None
            except ConnectionClosedError:
                raise EmulatorError("the client went away before companion_finish") from None
            reg = _child(finish, "link_code_companion_reg")
            bundle = _content(_child(reg, "link_code_pairing_wrapped_key_bundle"))
            announced = _content(_child(reg, "companion_identity_public"))
            try:
                companion_identity, adv_secret = phones_mod.finish_code_pairing(
                    account, hello, bundle
                )
            except PhoneError as error:
                await self._answer_error(session, finish, 401, "not-authorized")
                self.emit("pair-error", connection=session.id, error=str(error))
                raise EmulatorError(str(error)) from None
            if announced and announced != companion_identity:
                await self._answer_error(session, finish, 400, "bad-request")
                raise EmulatorError("companion_finish names another identity key")
            await self._answer(session, finish)
        except BaseException:
            # A mistyped code can be typed again while the window is open.
            self._pairing_failed(session)
            pending.hello = None
            pending.finish = None
            raise
        return await self._pair(
            session,
            account,
            companion_identity=companion_identity,
            adv_secret=adv_secret,
            method="code",
            # The phone's list shows the device props' name; the code's display name ("Chrome
            # (Linux)") is what its notification asked about, recorded with the request.
            name=(session.record.client.get("device_props") or {}).get("os")
            or pending.platform_display,
        )

    async def _pair(
        self,
        session: Session,
        account: Account,
        *,
        companion_identity: bytes,
        adv_secret: bytes,
        method: str,
        name: str,
    ) -> LinkedDevice:
        window = session.window
        assert window is not None
        window.pairing = True
        try:
            number = self.phones.reserve_device_number(account)
            signature = account.sign_companion(companion_identity, adv_secret, number)
            content = [
                Node(
                    "device-identity",
                    {"key-index": str(signature.key_index)},
                    signature.device_identity,
                ),
                Node("platform", {"name": account.platform}),
                Node("device", {"jid": account.user_jid(number), "lid": account.lid_jid(number)}),
            ]
            if account.business_name:
                content.append(Node("biz", {"name": account.business_name}))
            reply = await session.request(
                Node(
                    "iq",
                    {
                        "from": SERVER_JID,
                        "type": "set",
                        "id": self._next_iq_id(),
                        "xmlns": "md",
                        "t": self._now(),
                    },
                    [Node("pair-success", {}, content)],
                )
            )
        except TimeoutError:
            self._pairing_failed(session)
            raise EmulatorError("the client did not answer pair-success") from None
        except ConnectionClosedError:
            self._pairing_failed(session)
            raise EmulatorError("the client went away before answering pair-success") from None
        except BaseException:
            self._pairing_failed(session)
            raise
        if reply.attrs.get("type") == "error":
            error = _child(reply, "error")
            text = f"{error.attrs.get('code')} {error.attrs.get('text')}" if error else "error"
            self._pairing_failed(session)
            self.emit("pair-error", connection=session.id, error=text)
            session.close_later("pair-error")
            raise EmulatorError(f"the client refused the pairing: {text}")
        identity_node = _child(_child(reply, "pair-device-sign"), "device-identity")
        if not account.check_device_signature(
            signature, companion_identity, _content(identity_node)
        ):
            self._pairing_failed(session)
            self.emit("pair-error", connection=session.id, error="bad device signature")
            await session.close("pair-error")
            raise EmulatorError("the client's device signature does not verify")
        props = session.record.client.get("device_props") or {}
        device = self.phones.add_device(
            account,
            noise_public=session.conn.client_static,
            identity_public=companion_identity,
            key_index=signature.key_index,
            method=method,
            name=name,
            platform_type=str(props.get("platform_type") or "UNKNOWN"),
            device=number,
        )
        window.paired = True
        session.record.jid = str(device.jid)
        session.record.outcome = "paired"
        self.emit("paired", connection=session.id, jid=str(device.jid), method=method, name=name)
        with contextlib.suppress(ConnectionClosedError):
            await session.send(Node("stream:error", {"code": "515"}))
        session.close_later(delay=5.0)  # the client hangs up itself to log in again
        return device

    # --- login of a linked device ------------------------------------------------------

    async def _login(self, session: Session) -> bool:
        client = session.record.client
        user = client.get("username") or ""
        device_number = int(client.get("device") or 0)
        jid = JID(user, "s.whatsapp.net", device_number)
        session.record.jid = str(jid)
        linked = self.phones.find_device(user, device_number)
        if linked is None or linked.noise_public != session.conn.client_static:
            await session.send(Node("failure", {"reason": "401", "location": "emu"}))
            self.emit(
                "login-failure", connection=session.id, reason=401, jid=str(jid), linking=False
            )
            await self._linger(session, "failure-401")
            return False
        previous = self._live.get(str(jid))
        if previous is not None and not previous.closed:
            self.emit("replaced", connection=previous.id, by=session.id, jid=str(jid))
            with contextlib.suppress(ConnectionClosedError):
                await previous.send(
                    Node("stream:error", {}, [Node("conflict", {"type": "replaced"})])
                )
            previous.close_later("replaced")
        session.device = linked
        self._live[str(jid)] = session
        await session.send(
            Node(
                "success",
                {
                    "t": self._now(),
                    "lid": linked.lid,
                    "location": "emu",
                    "props": "1",
                    "abprops": "1",
                    "creation": str(int(linked.linked_at)),
                },
            )
        )
        session.record.outcome = None
        self.emit("login-success", connection=session.id, jid=str(jid))
        return True

    # --- incoming nodes -------------------------------------------------------------------

    async def _on_node(self, session: Session, node: Node) -> None:
        if node.tag == "iq":
            await self._on_iq(session, node)
        elif node.tag in ("ack", "ib", "presence", "receipt", "xmlstreamend", "chatstate"):
            return
        else:
            log.info("connection %s: ignoring <%s %s>", session.id, node.tag, node.attrs)

    async def _on_iq(self, session: Session, node: Node) -> None:
        kind = str(node.attrs.get("type", ""))
        iq_id = str(node.attrs.get("id", ""))
        if kind in ("result", "error"):
            future = session.pending.pop(iq_id, None)
            if future is not None and not future.done():
                future.set_result(node)
            return
        xmlns = str(node.attrs.get("xmlns", ""))
        children = node.content if isinstance(node.content, list) else []
        first = children[0] if children else None
        label = f"{xmlns}/{kind}/{first.tag if first else '-'}"
        session.record.iqs.append(label)
        if xmlns == "w:p":
            session.record.keepalives += 1
            await self._answer(session, node)
            self.emit("keepalive", connection=session.id, jid=session.record.jid)
        elif xmlns == "md" and first is not None and first.tag == "link_code_companion_reg":
            await self._on_link_code(session, node, first)
        elif xmlns == "md" and first is not None and first.tag == "remove-companion-device":
            await self._on_client_logout(session, node, first)
        elif xmlns == "md" and kind == "get" and first is not None and first.tag == "ref":
            window = session.window
            ref = window.current_ref() if window else base64.b64encode(os.urandom(16)).decode()
            await self._answer(session, node, [Node("ref", {}, ref.encode())])
        elif xmlns == "encrypt" and kind == "get" and first is not None and first.tag == "count":
            count = session.device.prekeys if session.device else 0
            await self._answer(session, node, [Node("count", {"value": str(count)})])
        elif xmlns == "encrypt" and kind == "set" and _child(node, "list") is not None:
            uploaded = _child(node, "list")
            added = len(uploaded.content) if uploaded and isinstance(uploaded.content, list) else 0
            if session.device is not None:
                session.device.prekeys += added
            await self._answer(session, node)
            self.emit("prekeys-uploaded", connection=session.id, count=added)
        elif xmlns == "passive" and kind == "set":
            await self._answer(session, node)
            if first is not None and first.tag == "active":
                session.record.state = "active"
                self.emit("active", connection=session.id, jid=session.record.jid)
                await session.send(
                    Node(
                        "ib",
                        {},
                        [Node("offline_preview", {"count": "0"}), Node("offline", {"count": "0"})],
                    )
                )
        else:
            session.record.unknown_iqs.append(label)
            log.info("connection %s: unknown IQ %s %s", session.id, label, node.attrs)
            self.emit("unknown-iq", connection=session.id, iq=label)
            if kind == "get":
                await self._answer_error(session, node, 501, "feature-not-implemented")
            else:
                await self._answer(session, node)

    async def _answer(
        self, session: Session, node: Node, content: list[Node] | None = None
    ) -> None:
        await session.send(
            Node(
                "iq",
                {"from": SERVER_JID, "type": "result", "id": str(node.attrs.get("id", ""))},
                content,
            )
        )

    async def _answer_error(self, session: Session, node: Node, code: int, text: str) -> None:
        await session.send(
            Node(
                "iq",
                {"from": SERVER_JID, "type": "error", "id": str(node.attrs.get("id", ""))},
                [Node("error", {"code": str(code), "text": text})],
            )
        )

    async def _on_link_code(self, session: Session, node: Node, reg: Node) -> None:
        stage = str(reg.attrs.get("stage", ""))
        if stage == "companion_finish":
            window = session.window
            pending = window.code if window else None
            ref = _content(_child(reg, "link_code_pairing_ref")).decode(errors="replace")
            if pending is None or pending.finish is None or pending.ref != ref:
                await self._answer_error(session, node, 400, "bad-request")
                return
            if not pending.finish.done():
                pending.finish.set_result(node)
            return
        if stage != "companion_hello":
            await self._answer_error(session, node, 400, "bad-request")
            return
        jid = reg.attrs.get("jid")
        number = jid.user if isinstance(jid, JID) else phones_mod.digits(str(jid or ""))
        wrapped = _content(_child(reg, "link_code_pairing_wrapped_companion_ephemeral_pub"))
        auth_key = _content(_child(reg, "companion_server_auth_key_pub"))
        platform_id = _content(_child(reg, "companion_platform_id")).decode(errors="replace")
        display = _content(_child(reg, "companion_platform_display")).decode(errors="replace")
        push = str(reg.attrs.get("should_show_push_notification", "")) == "true"
        session.record.pair_code = {
            "phone": number,
            "platform_id": platform_id,
            "platform_display": display,
            "push_notification": push,
            "requested_at": time.time(),
        }
        failure = self._code_failure(number)
        if failure is not None:
            self.emit("code-refused", connection=session.id, phone=number, failure=failure)
            answer = CODE_FAILURES[failure]
            if answer is not None:
                await self._answer_error(session, node, *answer)
            session.record.pair_code["refused"] = failure
            return
        window = session.window
        problem = None
        if window is None or window.closed or window.paired:
            problem = "no login window"
        elif len(wrapped) != 80 or auth_key != session.conn.client_static:
            problem = "bad keys"
        elif not display_name_ok(display):
            problem = f"display name {display!r} is not 'Browser (OS)'"
        if problem is not None or window is None:
            log.info("connection %s: code request refused: %s", session.id, problem)
            session.record.pair_code["refused"] = "bad-request"
            self.emit("code-refused", connection=session.id, phone=number, failure="bad-request")
            await self._answer_error(session, node, 400, "bad-request")
            return
        ref = base64.b64encode(os.urandom(24)).decode()
        window.code = PendingCode(
            phone=number,
            ref=ref,
            wrapped_companion_ephemeral=wrapped,
            platform_id=platform_id,
            platform_display=display,
            push_notification=push,
        )
        await self._answer(
            session,
            node,
            [
                Node(
                    "link_code_companion_reg", {}, [Node("link_code_pairing_ref", {}, ref.encode())]
                )
            ],
        )
        self.emit(
            "code-requested",
            connection=session.id,
            phone=number,
            platform_id=platform_id,
            platform_display=display,
        )

    def _code_failure(self, number: str) -> str | None:
        for rule in list(self.code_failures):
            if rule.phone not in (number, "*"):
                continue
            if rule.times is not None:
                rule.times -= 1
                if rule.times <= 0:
                    self.code_failures.remove(rule)
            return rule.kind
        return None

    async def _on_client_logout(self, session: Session, node: Node, child: Node) -> None:
        jid = child.attrs.get("jid")
        await self._answer(session, node)
        if isinstance(jid, JID):
            removed = self.phones.remove_device(jid.user, jid.device)
            if removed is not None:
                self.emit("unlinked", jid=str(removed.jid), by="client")

    # --- the phone and the operator -----------------------------------------------------

    async def unlink(self, phone: str, device: int) -> LinkedDevice:
        number = phones_mod.digits(phone)
        removed = self.phones.remove_device(number, device)
        if removed is None:
            raise EmulatorError(f"{number} has no linked device {device}")
        self.emit("unlinked", jid=str(removed.jid), by="phone")
        session = self._live.get(str(removed.jid))
        if session is not None and not session.closed:
            with contextlib.suppress(ConnectionClosedError):
                await session.send(
                    Node(
                        "stream:error",
                        {"code": "401"},
                        [Node("conflict", {"type": "device_removed"})],
                    )
                )
            session.close_later("device-removed")
        return removed

    async def drop(self, target: str | int) -> int:
        """Close sockets without a word: a device JID (`user:device@s.whatsapp.net`), a phone
        number (all its devices) or a connection id. Returns how many were dropped."""
        sessions = self._find_sessions(target)
        for session in sessions:
            self.emit("dropped", connection=session.id, jid=session.record.jid)
            await session.close("dropped")
        return len(sessions)

    async def replace(self, target: str | int) -> int:
        """Another client took over these keys: the live connections get
        `<stream:error><conflict type="replaced"/>` (whatsmeow's StreamReplaced)."""
        sessions = self._find_sessions(target)
        for session in sessions:
            self.emit("replaced", connection=session.id, by="operator", jid=session.record.jid)
            with contextlib.suppress(ConnectionClosedError):
                await session.send(
                    Node("stream:error", {}, [Node("conflict", {"type": "replaced"})])
                )
            session.close_later("replaced")
        return len(sessions)

    async def stream_error(self, target: str | int, code: str = "503") -> int:
        sessions = self._find_sessions(target)
        for session in sessions:
            with contextlib.suppress(ConnectionClosedError):
                await session.send(Node("stream:error", {"code": code}))
            session.close_later(f"stream-error-{code}")
        return len(sessions)

    async def request_passkey(self, connection: int | None = None) -> int:
        """Send the passkey_prologue_request notification to a login window (the latest one by
        default). whatsmeow turns it into its QR channel's `passkey-request` item."""
        windows = [
            session
            for session in self.sessions.values()
            if session.window is not None
            and not session.window.closed
            and (connection is None or session.id == connection)
        ]
        if not windows:
            raise EmulatorError("no open login window")
        session = max(windows, key=lambda s: s.id)
        options = {
            "challenge": base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="),
            "timeout": 60000,
            "rpId": "whatsapp.com",
            "allowCredentials": [],
            "userVerification": "preferred",
            "extensions": {},
        }
        await session.send(
            Node(
                "notification",
                {
                    "from": SERVER_JID,
                    "type": "passkey_prologue_request",
                    "id": self._next_iq_id(),
                    "t": self._now(),
                },
                [Node("passkey_request_options", {}, json.dumps(options).encode())],
            )
        )
        self.emit("passkey-requested", connection=session.id)
        return session.id

    def _find_sessions(self, target: str | int) -> list[Session]:
        if isinstance(target, int) or (
            isinstance(target, str) and target.isdigit() and len(target) < 6
        ):
            session = self.sessions.get(int(target))
            return [session] if session is not None else []
        text = str(target)
        if "@" in text or ":" in text:
            user, device = parse_device(text)
            jid = str(JID(user, "s.whatsapp.net", device))
            return [s for s in self.sessions.values() if s.record.jid == jid and not s.closed]
        number = phones_mod.digits(text)
        return [
            s
            for s in self.sessions.values()
            if s.record.jid and s.record.jid.split("@")[0].split(":")[0] == number and not s.closed
        ]

    def connections(self) -> list[dict[str, Any]]:
        return [record.to_dict() for record in self.records]


def parse_device(text: str) -> tuple[str, int]:
    """`4915...:3@s.whatsapp.net` or `4915...:3` -> ("4915...", 3)."""
    bare = text.split("@", 1)[0]
    user, _, device = bare.partition(":")
    user = user.split(".", 1)[0]
    return phones_mod.digits(user), int(device or 0)


def _child(node: Node | None, tag: str) -> Node | None:
    if node is None or not isinstance(node.content, list):
        return None
    for child in node.content:
        if child.tag == tag:
            return child
    return None


def _content(node: Node | None) -> bytes:
    if node is None or node.content is None or isinstance(node.content, list):
        return b""
    content: Any = node.content
    if isinstance(content, str):
        return content.encode()
    return bytes(content)
