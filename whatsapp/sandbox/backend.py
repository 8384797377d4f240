"""The sandbox backend: a simulated WhatsApp that follows the real linking rules.

The client side runs here, in the worker; the "server" state lives in the sandbox's tables, and
the simulated phone (`whatsapp.sandbox.phone`) changes it from any process. A client notices the
phone by polling its own row: every `poll_interval` seconds while a login window is open, every
`linked_poll_interval` seconds once linked. Every WhatsApp duration (QR refs, restarts, the info
query timeout, rate windows) is divided by the speed factor. Magic numbers: see `rules.py`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.models import Q
from django.utils import timezone

from whatsapp.backends.base import (
    Backend,
    BackendClient,
    BackendEvent,
    ClientCrashed,
    ClientOutdated,
    Connected,
    Disconnected,
    EventHandler,
    LoggedOut,
    PairingWindowClosed,
    PairSuccess,
    PasskeyRequired,
    QRCode,
    StreamReplaced,
    TemporaryBan,
)
from whatsapp.errors import ConnectionClosed, InvalidPhone, OperationTimeout, RateLimited
from whatsapp.sandbox import rules
from whatsapp.sandbox.models import CodeRequest, Device, LoginRefusal, LoginWindow

logger = logging.getLogger(__name__)


class SandboxBackend(Backend):
    name = "sandbox"

    def __init__(
        self,
        *,
        speed: float | None = None,
        poll_interval: float = 0.15,
        linked_poll_interval: float = 0.5,
    ) -> None:
        self.speed = float(settings.WHATSAPP_SANDBOX_SPEED if speed is None else speed)
        if self.speed <= 0:
            raise ValueError("speed must be positive")
        # Poll intervals are real seconds, not scaled: they bound how fast a phone action shows.
        self.poll_interval = poll_interval
        self.linked_poll_interval = linked_poll_interval
        self.database = _DatabaseThread()
        self._clients: weakref.WeakSet[SandboxClient] = weakref.WeakSet()

    def seconds(self, real_seconds: float) -> float:
        return real_seconds / self.speed

    async def shutdown(self) -> None:
        for client in list(self._clients):
            await client.disconnect()
        await self.database.close()

    def create_client(
        self, *, client_uuid: str, device_jid: str | None, on_event: EventHandler
    ) -> SandboxClient:
        client = SandboxClient(
            self, client_uuid=client_uuid, device_jid=device_jid, on_event=on_event
        )
        self._clients.add(client)
        return client

    def credentials_exists(self, *, client_uuid: str, device_jid: str | None) -> bool:
        return _devices_of(client_uuid, device_jid).exists()

    def credentials_delete(self, *, client_uuid: str, device_jid: str | None) -> int:
        deleted, _ = _devices_of(client_uuid, device_jid).delete()
        return deleted


class SandboxClient(BackendClient):
    def __init__(
        self,
        backend: SandboxBackend,
        *,
        client_uuid: str,
        device_jid: str | None,
        on_event: EventHandler,
    ) -> None:
        self._backend = backend
        self._db = backend.database.run
        self.client_uuid = client_uuid
        self.jid = device_jid
        self._on_event = on_event
        self._task: asyncio.Task[None] | None = None
        self._live = False  # between connect() and the end of the connection
        self._stopping = False
        self._window_id: int | None = None  # set while the login socket is open
        self._qr_seen = False
        self._token = ""
        # The would-be device's keys live as long as the client, like whatsmeow's fresh store.
        self._noise_public = secrets.token_bytes(32)
        self._identity_public = secrets.token_bytes(32)

    @property
    def running(self) -> bool:
        return self._live

    async def connect(self) -> None:
        if self._live:
            return
        self._live = True
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"sandbox-client-{self.client_uuid}")

    async def pair_phone(self, phone_digits: str) -> str:
        if self._window_id is None or not self._qr_seen:
            raise ConnectionClosed("websocket not connected")
        window_id = self._window_id
        digits = re.sub(r"\D", "", phone_digits)
        if len(digits) <= 6:
            raise InvalidPhone("phone number too short")
        if digits.startswith("0"):
            raise InvalidPhone("international phone number required (must not start with 0)")
        magic = rules.magic(digits)
        if magic == rules.NOT_ON_WHATSAPP:
            raise InvalidPhone(
                "This number is not on WhatsApp. Check the number, or use the QR code.",
                details={"reason": "not_on_whatsapp"},
            )
        if magic == rules.RATE_OVERLIMIT:
            raise self._rate_overlimit()
        if magic == rules.INFO_QUERY_HANGS:
            await asyncio.sleep(self._backend.seconds(rules.INFO_QUERY_TIMEOUT))
            raise OperationTimeout("info query timed out")
        code = rules.pairing_code_new()
        outcome = await self._db(
            _code_request,
            window_id=window_id,
            client_uuid=self.client_uuid,
            digits=digits,
            code=code,
            window_seconds=self._backend.seconds(rules.CODE_REQUEST_WINDOW),
        )
        if outcome == "rate_overlimit":
            raise self._rate_overlimit()
        if outcome == "closed":
            raise ConnectionClosed("websocket not connected")
        return code

    async def logout(self) -> None:
        # Silence the client first: it must not report its own logout as the phone's.
        self._stopping = True
        if self.jid is not None:
            await self._db(_device_delete, self.client_uuid, self.jid)
        await self._stop()

    async def disconnect(self) -> None:
        self._stopping = True
        await self._stop()

    async def _stop(self) -> None:
        task = self._task
        if not self._live or task is None or task.done():
            return
        task.cancel()
        if task is not asyncio.current_task():  # not when called from our own event handler
            await asyncio.wait([task])

    async def _run(self) -> None:
        final: BackendEvent | None = None
        try:
            final = await self._session()
        except Exception as exc:
            logger.exception("sandbox client %s crashed", self.client_uuid)
            final = ClientCrashed(message=f"{type(exc).__name__}: {exc}")
        finally:
            await self._cleanup()
            self._live = False
        # The last event goes out once the client is fully stopped, so its handler may already
        # call connect() again.
        if final is not None:
            await self._emit(final)

    async def _session(self) -> BackendEvent:
        if self.jid is None:
            linked = await self._login()
            if linked is not True:
                return linked or PairingWindowClosed()
            await asyncio.sleep(self._backend.seconds(rules.RESTART_AFTER_PAIR))
        return await self._online()

    async def _login(self) -> bool | BackendEvent:
        """Open a login window and rotate its QR refs; True once the phone has linked, False when
        the refs ran out, or the event that refused the login socket."""
        await asyncio.sleep(self._backend.seconds(rules.DIAL))
        refusal = await self._db(_login_refusal_take, self.client_uuid)
        if refusal == LoginRefusal.Kind.CLIENT_OUTDATED:
            return ClientOutdated()  # WhatsApp's 405 comes before any QR
        started = timezone.now()
        window_end = started + self._delta(rules.window_seconds())
        self._window_id = await self._db(_window_open, self.client_uuid, started, window_end)
        adv_secret = secrets.token_bytes(32)
        for index in range(rules.REF_COUNT):
            # Computed from the window start so rotations do not drift with polling delays.
            expires_at = started + self._delta(rules.ref_expires_after(index))
            qr = rules.qr_new(
                rules.qr_ref_new(),
                noise_public=self._noise_public,
                identity_public=self._identity_public,
                adv_secret=adv_secret,
            )
            # Stored before it is shown, so a phone can scan it the moment it appears.
            await self._db(_window_show_qr, self._window_id, qr, expires_at, index + 1)
            self._qr_seen = True
            await self._emit(
                QRCode(code=qr, index=index, expires_at=expires_at, window_expires_at=window_end)
            )
            if refusal == LoginRefusal.Kind.PASSKEY:
                # The phone started the link and WhatsApp wants a passkey this client lacks.
                await self._db(_window_close, self._window_id)
                self._window_id, self._qr_seen = None, False
                return PasskeyRequired()
            linked = await self._watch_window(expires_at)
            if linked is not None:
                return await self._paired(*linked)
        # The phone may have linked between our last poll and now: the close tells.
        linked = await self._db(_window_close, self._window_id)
        self._window_id = None
        self._qr_seen = False
        if linked is not None:
            return await self._paired(*linked)
        return False

    async def _watch_window(self, until: datetime) -> tuple[str, str] | None:
        while (remaining := (until - timezone.now()).total_seconds()) > 0:
            await asyncio.sleep(min(self._backend.poll_interval, remaining))
            linked = await self._db(_window_linked, self._window_id)
            if linked is not None:
                return linked
        return None

    async def _paired(self, jid: str, phone: str) -> bool:
        self._window_id = None
        self._qr_seen = False
        self.jid = jid
        await self._emit(PairSuccess(jid=jid, phone=phone))
        return True

    async def _online(self) -> BackendEvent:
        """Connect with the stored device, reconnecting after drops; returns the final event."""
        assert self.jid is not None
        while True:
            await asyncio.sleep(self._backend.seconds(rules.DIAL))
            self._token = secrets.token_hex(8)
            state = await self._db(
                _device_connect,
                self.client_uuid,
                self.jid,
                self._token,
                self._backend.seconds(rules.BAN_SECONDS),
            )
            if state.refusal is not None:
                self._token = ""
                return state.refusal
            await self._emit(Connected(jid=self.jid, phone=state.phone))
            final = await self._watch_device(state.drops)
            if final is not None:
                return final
            await self._emit(Disconnected())
            await asyncio.sleep(self._backend.seconds(rules.RECONNECT_AFTER_DROP))

    async def _watch_device(self, drops_seen: int) -> BackendEvent | None:
        """Wait while online; None if the server dropped us (reconnect), else the final event."""
        while True:
            await asyncio.sleep(self._backend.linked_poll_interval)
            row = await self._db(_device_row, self.jid)
            if row is None:
                return LoggedOut(reason="the device was removed from the phone")
            token, drops, banned_until = row
            if token != self._token:
                self._token = ""  # it is the other client's now
                return StreamReplaced()
            if banned_until is not None and banned_until > timezone.now():
                return _temporary_ban(banned_until)
            if drops != drops_seen:
                return None

    async def _cleanup(self) -> None:
        window_id, token = self._window_id, self._token
        self._window_id, self._qr_seen, self._token = None, False, ""
        try:
            if window_id is not None:
                await self._db(_window_close, window_id)
            if token and self.jid is not None:
                await self._db(_device_release, self.jid, token)
        except Exception:
            # Loop or executor already gone (process stopping); a stale row only looks online.
            logger.warning("sandbox client %s: cleanup failed", self.client_uuid, exc_info=True)

    async def _emit(self, event: BackendEvent) -> None:
        if self._stopping:
            return
        try:
            await self._on_event(event)
        except Exception:
            # A bug in the handler must not kill the simulated connection.
            logger.exception(
                "sandbox client %s: event handler failed on %s",
                self.client_uuid,
                type(event).__name__,
            )

    def _rate_overlimit(self) -> RateLimited:
        return RateLimited(
            "info query returned status 429: rate-overlimit",
            retry_after=max(1, round(self._backend.seconds(rules.RATE_LIMIT_RETRY_AFTER))),
        )

    def _delta(self, real_seconds: float) -> timedelta:
        return timedelta(seconds=self._backend.seconds(real_seconds))


class _DatabaseThread:
    """One thread of our own for this backend's ORM calls.

    The queries are tiny, so one thread is plenty; owning it means owning its connection, which
    `close()` releases (connections left in the loop's default executor would outlive the backend
    and, on PostgreSQL, keep a test database from being dropped).
    """

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None

    async def run(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="sandbox-db")
        call = sync_to_async(_reconnecting, thread_sensitive=False, executor=self._executor)
        return await call(fn, *args, **kwargs)

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        await asyncio.wrap_future(executor.submit(connections.close_all))
        executor.shutdown(wait=False)


def _reconnecting(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except DatabaseError:
        # The thread's connection lives on between calls; once broken (database restarted) it
        # would fail every later poll, so drop it and let the next call open a fresh one.
        connections.close_all()
        raise


@dataclass(frozen=True)
class _ConnectState:
    phone: str = ""
    drops: int = 0
    refusal: BackendEvent | None = None


def _devices_of(client_uuid: str, device_jid: str | None):
    devices = Device.objects.filter(client_uuid=client_uuid)
    return devices if device_jid is None else devices.filter(jid=device_jid)


def _temporary_ban(until: datetime) -> TemporaryBan:
    remaining = max(1, round((until - timezone.now()).total_seconds()))
    return TemporaryBan(code=rules.BAN_CODE, expire_seconds=remaining)


# --- database steps (synchronous, run on the backend's database thread) ----------------------


def _window_open(client_uuid: str, opened_at: datetime, closes_at: datetime) -> int:
    # Finished windows are history nobody reads (and "open" ones long past their end were left
    # by a process that died): keep the table small.
    LoginWindow.objects.filter(
        Q(client_uuid=client_uuid) & ~Q(state=LoginWindow.State.OPEN)
        | Q(closes_at__lt=opened_at - timedelta(hours=1))
    ).delete()
    # One client has one connection: a window it left open (its process died) is gone now.
    LoginWindow.objects.filter(client_uuid=client_uuid, state=LoginWindow.State.OPEN).update(
        state=LoginWindow.State.CLOSED
    )
    return LoginWindow.objects.create(
        client_uuid=client_uuid, opened_at=opened_at, closes_at=closes_at
    ).pk


@transaction.atomic
def _login_refusal_take(client_uuid: str) -> str | None:
    """Consume the refusal set for this client (or for any next client), if any."""
    refusal = (
        LoginRefusal.objects.select_for_update()
        .filter(Q(client_uuid=client_uuid) | Q(client_uuid=""))
        .order_by("-client_uuid", "pk")
        .first()
    )
    if refusal is None:
        return None
    refusal.delete()
    return refusal.kind


def _window_show_qr(window_id: int, qr: str, expires_at: datetime, refs_issued: int) -> None:
    LoginWindow.objects.filter(pk=window_id, state=LoginWindow.State.OPEN).update(
        current_qr=qr, current_qr_expires_at=expires_at, refs_issued=refs_issued
    )


def _window_linked(window_id: int) -> tuple[str, str] | None:
    row = (
        LoginWindow.objects.filter(pk=window_id)
        .values_list("state", "linked_jid", "linked_phone")
        .first()
    )
    if row is None or row[0] != LoginWindow.State.LINKED:
        return None
    return row[1], row[2]


def _window_close(window_id: int) -> tuple[str, str] | None:
    """Close an open window; if the phone linked it first, return (jid, phone) instead."""
    closed = LoginWindow.objects.filter(pk=window_id, state=LoginWindow.State.OPEN).update(
        state=LoginWindow.State.CLOSED
    )
    return None if closed else _window_linked(window_id)


@transaction.atomic
def _code_request(
    *, window_id: int, client_uuid: str, digits: str, code: str, window_seconds: float
) -> str:
    now = timezone.now()
    since = now - timedelta(seconds=window_seconds)
    # Older requests can no longer count towards any limit.
    CodeRequest.objects.filter(
        requested_at__lt=min(since, now - timedelta(seconds=rules.CODE_REQUEST_WINDOW))
    ).delete()
    recent = CodeRequest.objects.filter(phone=digits, requested_at__gte=since).count()
    if recent >= rules.CODE_REQUEST_MAX:
        return "rate_overlimit"
    # A new code replaces the window's previous one: only the latest is valid.
    updated = LoginWindow.objects.filter(pk=window_id, state=LoginWindow.State.OPEN).update(
        code=code, code_phone=digits, code_requested_at=now
    )
    if not updated:
        return "closed"
    CodeRequest.objects.create(phone=digits, client_uuid=client_uuid, requested_at=now)
    return "ok"


def _device_connect(client_uuid: str, jid: str, token: str, ban_seconds: float) -> _ConnectState:
    device = Device.objects.filter(client_uuid=client_uuid, jid=jid).first()
    if device is None:
        return _ConnectState(
            refusal=LoggedOut(
                reason="this device is not linked any more (removed from the phone)",
                on_connect=True,
            )
        )
    magic = rules.magic(device.phone)
    now = timezone.now()
    if device.banned_until is not None and device.banned_until > now:
        return _ConnectState(refusal=_temporary_ban(device.banned_until))
    if magic == rules.BANNED:
        return _ConnectState(
            refusal=TemporaryBan(code=rules.BAN_CODE, expire_seconds=max(1, round(ban_seconds)))
        )
    if magic == rules.OUTDATED:
        return _ConnectState(refusal=ClientOutdated())
    # Taking the token over is what tells an older connection with these keys to stop.
    Device.objects.filter(pk=device.pk).update(connection_token=token)
    return _ConnectState(phone=device.phone, drops=device.drops)


def _device_row(jid: str) -> tuple[str, int, datetime | None] | None:
    return (
        Device.objects.filter(jid=jid)
        .values_list("connection_token", "drops", "banned_until")
        .first()
    )


def _device_release(jid: str, token: str) -> None:
    Device.objects.filter(jid=jid, connection_token=token).update(connection_token="")


def _device_delete(client_uuid: str, jid: str) -> None:
    Device.objects.filter(client_uuid=client_uuid, jid=jid).delete()
