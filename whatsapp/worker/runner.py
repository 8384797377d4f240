"""One company's session inside a worker: drives its backend client and turns the client's
events into persisted status changes and published events (docs/design.md, "Statuses and reasons", "Linking rules")."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from whatsapp import errors, events
from whatsapp.backends import base
from whatsapp.errors import ConnectionClosed, NoCredentials, OperationTimeout, ServiceError
from whatsapp.models import (
    AttemptMethod,
    AttemptOutcome,
    PairingAttempt,
    SessionStatus,
    WhatsAppSession,
)
from whatsapp.privacy import mask_phone
from whatsapp.services.state import (
    LINK_FIELDS_CLEARED,
    PAIRING_FIELDS_CLEARED,
    attempt_finish,
    session_write,
)
from whatsapp.worker.commands import CommandArgs, Op, Result

if TYPE_CHECKING:
    from whatsapp.worker.core import WhatsAppWorker

logger = logging.getLogger(__name__)


def _min_window_left() -> timedelta:
    # A code asked for with less of the window left than this gets a fresh window first.
    return timedelta(seconds=2 * settings.WHATSAPP_MIN_CODE_LIFETIME)


# whatsmeow reports 401, 403 and 406 as LoggedOut (and has already deleted the store). 401 is a
# logout; 403 (WhatsApp now calls it "locked") and 406 ("banned") are terminal failures.
LOGGED_OUT_REASONS = {401}
ACCOUNT_FAILURES = {
    403: (
        errors.ACCOUNT_LOCKED,
        "WhatsApp locked this account (403); open WhatsApp on the phone, then link again.",
    ),
    406: (
        errors.ACCOUNT_BANNED,
        "WhatsApp banned this account from linked devices (406).",
    ),
}
# LoggedOut.reason as the neonize mapping names it -> the HTTP-like code.
LOGGED_OUT_REASON_CODES = {"logged_out": 401, "main_device_gone": 403, "unknown_logout": 406}


def _remaining(deadline_at: float) -> float:
    return max(0.0, deadline_at - time.time())


class SessionRunner:
    def __init__(self, worker: WhatsAppWorker, session: WhatsAppSession) -> None:
        self.worker = worker
        self.company_id = session.company_id
        self.session_id = session.pk
        self.client_uuid = str(session.client_uuid)
        self.client: base.BackendClient | None = None
        self.mode: str | None = None  # "linking" | "linked"
        self.generation = 0
        self.window_ready: asyncio.Future | None = None
        self.window_expires_at: datetime | None = None
        self.ops = asyncio.Lock()
        self.reconnect_task: asyncio.Task | None = None
        self.backoff = 1.0
        self.closed = False
        self.lost = False  # it found it no longer owns the session: it does nothing more

    # --- plumbing ----------------------------------------------------------------------------

    async def _session(self) -> WhatsAppSession:
        return await self.worker.db(WhatsAppSession.objects.get, pk=self.session_id)

    async def _write(self, session: WhatsAppSession, **changes: Any) -> bool:
        if self.lost:
            return False
        written = await self.worker.db(
            session_write, session, owner=self.worker.worker_id, **changes
        )
        if not written:
            self._lose("its lease is gone")
        return written

    def _lose(self, why: str) -> None:
        """Not the owner any more: from here on this runner writes, publishes, deletes and
        opens nothing (docs/design.md, "Topology and ownership")."""
        if self.lost:
            return
        self.lost = True
        logger.warning("company %s: %s; dropping the session here", self.company_id, why)
        self.worker.schedule(self.worker.runner_lost(self))

    def _still_owned(self) -> bool:
        return WhatsAppSession.objects.filter(
            pk=self.session_id, owner=self.worker.worker_id, lease_expires_at__gt=timezone.now()
        ).exists()

    async def _publish(self, *payloads: events.Event) -> None:
        if not self.lost:
            await events.apublish(self.company_id, list(payloads))

    async def _open(self, *, device_jid: str | None) -> None:
        await self._close_client()
        if self.lost or not await self.worker.db(self._still_owned):
            # A second client of the same device would replace the real owner's stream.
            self._lose("it does not own the session (any more)")
            return
        self.generation += 1
        self.window_ready = asyncio.get_running_loop().create_future()
        self.window_expires_at = None
        self.mode = "linked" if device_jid else "linking"
        on_event = functools.partial(self._on_event, self.generation)
        self.client = self.worker.backend.create_client(
            client_uuid=self.client_uuid, device_jid=device_jid, on_event=on_event
        )
        await self.client.connect()

    async def _close_client(self) -> None:
        client, self.client = self.client, None
        self.generation += 1  # events of the old client are ignored from here on
        if self.reconnect_task and self.reconnect_task is not asyncio.current_task():
            self.reconnect_task.cancel()
        self.reconnect_task = None
        if self.window_ready and not self.window_ready.done():
            self.window_ready.set_exception(ConnectionClosed("The linking window was closed."))
            self.window_ready.exception()  # mark retrieved
        if client is not None:
            try:
                await asyncio.wait_for(client.disconnect(), timeout=10)
            except Exception:
                logger.exception("company %s: client did not stop cleanly", self.company_id)

    async def close(self) -> None:
        """Stop the client; credentials stay (worker shutdown, lost lease, stop command)."""
        self.closed = True
        async with self.ops:
            await self._close_client()

    def _end(self) -> None:
        """Finish this runner from inside an event handler without blocking the event stream."""
        self.worker.schedule(self.worker.runner_finished(self))

    # --- commands ----------------------------------------------------------------------------

    async def handle(self, op: Op, args: CommandArgs, deadline_at: float) -> Result:
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            raise errors.ValidationFailed(f"unknown worker command {op!r}")
        result: Result = await handler(args, deadline_at)
        return result

    async def op_start(self, args: CommandArgs, deadline_at: float) -> Result:
        async with self.ops:
            if self.client is None:
                await self._open(device_jid=None)
        return Result()

    async def op_pairing_code(self, args: CommandArgs, deadline_at: float) -> Result:
        async with self.ops:
            now = timezone.now()
            window_short = (
                self.window_expires_at is not None
                and self.window_expires_at - now < _min_window_left()
            )
            if self.client is None or self.mode != "linking" or window_short:
                await self._open(device_jid=None)
            try:
                assert self.window_ready is not None, "opening a client sets window_ready"
                await asyncio.wait_for(asyncio.shield(self.window_ready), _remaining(deadline_at))
            except TimeoutError:
                raise OperationTimeout("WhatsApp did not open a linking window in time.") from None
            await self.worker.db(
                PairingAttempt.objects.filter(pk=args["attempt_id"]).update, reached_whatsapp=True
            )
            if self.client is None:
                raise ConnectionClosed("The linking connection closed; start linking again.")
            try:
                code = await asyncio.wait_for(
                    self.client.pair_phone(args["phone_digits"]), _remaining(deadline_at)
                )
            except TimeoutError:
                raise OperationTimeout(
                    "WhatsApp did not answer the pairing code request in time."
                ) from None
            expires_at = self.window_expires_at
            session = await self._session()
            await self._write(
                session,
                status=SessionStatus.CODE_READY,
                pairing_code=code,
                pairing_phone=args["phone"],
                pairing_expires_at=expires_at,
                current_attempt_id=args["attempt_id"],
            )
            await self._publish(
                events.status_event(session), events.session_pairing_code_event(session)
            )
        assert expires_at is not None, "an open window has an end"
        return Result(pairing_code=code, expires_at=expires_at.isoformat())

    async def op_reconnect(self, args: CommandArgs, deadline_at: float) -> Result:
        async with self.ops:
            session = await self._session()
            if not session.has_credentials or not session.linked_jid:
                raise NoCredentials()
            self.backoff = 1.0
            await self._open(device_jid=session.linked_jid)
        return Result()

    async def op_logout(self, args: CommandArgs, deadline_at: float) -> Result:
        unlinked = False
        async with self.ops:
            if self.client is not None and self.mode == "linked":
                try:
                    await asyncio.wait_for(self.client.logout(), _remaining(deadline_at))
                    unlinked = True
                except (ServiceError, TimeoutError) as error:
                    logger.warning(
                        "company %s: logout not confirmed by WhatsApp: %r", self.company_id, error
                    )
            await self._close_client()
        await self.worker.runner_finished(self)
        return Result(unlinked=unlinked)

    async def op_stop(self, args: CommandArgs, deadline_at: float) -> Result:
        async with self.ops:
            await self._close_client()
        await self.worker.runner_finished(self)
        return Result()

    async def resume(self) -> None:
        """Taken over by this worker (start-up, another worker died): bring the session back."""
        if self.client is not None:
            return  # a command got here first and already runs the client
        session = await self._session()
        if session.has_credentials and session.linked_jid:
            if session.status != SessionStatus.RECONNECTING:
                await self._write(session, status=SessionStatus.RECONNECTING)
                await self._publish(events.status_event(session))
            async with self.ops:
                await self._open(device_jid=session.linked_jid)
        elif session.is_pairing:
            # The old login window died with its worker; a code given from it is void.
            await self._write(
                session,
                status=SessionStatus.CONNECTING,
                pairing_code="",
                pairing_phone="",
                pairing_expires_at=None,
                qr_code="",
            )
            await self._publish(events.status_event(session))
            async with self.ops:
                await self._open(device_jid=None)
        else:
            await self._write(session, wants_running=False)
            await self.worker.runner_finished(self)

    # --- events ------------------------------------------------------------------------------

    async def _on_event(self, generation: int, event: base.BackendEvent) -> None:
        if self.lost:
            return
        if generation != self.generation or self.closed:
            if isinstance(event, base.PairSuccess):
                # A phone finished linking a window we had already given up (it expired, was
                # cancelled or reset): the device row it left belongs to no session.
                await self._delete_orphan(event.jid)
            return
        handler = getattr(self, f"on_{type(event).__name__}", None)
        if handler is None:
            logger.debug("company %s: ignoring %r", self.company_id, event)
            return
        try:
            await handler(event)
        except Exception:
            logger.exception(
                "company %s: handling %s failed", self.company_id, type(event).__name__
            )
            self._recover_from_failed_handler()

    def _recover_from_failed_handler(self) -> None:
        """An event could not be handled (e.g. the database was unreachable): the state may no
        longer match the connection, so a linked session reconnects rather than strand."""
        if self.closed or self.lost or self.mode != "linked":
            return
        if self.reconnect_task is None or self.reconnect_task.done():
            delay = self.backoff
            self.backoff = min(self.backoff * 2, settings.WHATSAPP_RECONNECT_MAX_DELAY)
            self.reconnect_task = asyncio.get_running_loop().create_task(
                self._reconnect_after(delay)
            )

    async def on_QRCode(self, event: base.QRCode) -> None:
        self.window_expires_at = event.window_expires_at
        if self.window_ready and not self.window_ready.done():
            self.window_ready.set_result(None)
        session = await self._session()
        status = (
            SessionStatus.CODE_READY
            if session.status == SessionStatus.CODE_READY
            else SessionStatus.QR_READY
        )
        changed = status != session.status
        if not await self._write(
            session,
            status=status,
            qr_code=event.code,
            qr_expires_at=event.expires_at,
            window_expires_at=event.window_expires_at,
        ):
            return
        if event.index > 0 and session.current_attempt_id:
            await self.worker.db(
                PairingAttempt.objects.filter(pk=session.current_attempt_id).update,
                qr_rotations=F("qr_rotations") + 1,
            )
        payloads = [events.status_event(session)] if changed else []
        await self._publish(*payloads, events.qr_event(session))

    async def on_PairingWindowClosed(self, event: base.PairingWindowClosed) -> None:
        if self.mode != "linking":
            return
        session = await self._session()
        await self.worker.db(
            attempt_finish,
            session.current_attempt_id,
            outcome=AttemptOutcome.EXPIRED,
            error_code=errors.PAIRING_EXPIRED,
        )
        await self._write(
            session,
            status=SessionStatus.DISCONNECTED,
            wants_running=False,
            last_error_code=errors.PAIRING_EXPIRED,
            last_error_message="The linking window expired before a phone linked. Start again.",
            **PAIRING_FIELDS_CLEARED,
        )
        await self._publish(
            events.status_event(session), events.disconnected_event(errors.PAIRING_EXPIRED)
        )
        self._end()

    async def _delete_orphan(self, jid: str) -> None:
        try:
            deleted = await self.worker.db(
                self.worker.backend.credentials_delete, client_uuid=self.client_uuid, device_jid=jid
            )
        except Exception:
            logger.exception("company %s: could not delete an orphan device", self.company_id)
            return
        logger.warning(
            "company %s: deleted the device of a link that came too late (%d rows)",
            self.company_id,
            deleted,
        )

    async def on_PairSuccess(self, event: base.PairSuccess) -> None:
        session = await self._session()
        if not session.wants_running or not session.is_pairing:
            # A reset or cancel raced the phone: nobody wants this link any more.
            await self._delete_orphan(event.jid)
            return
        self.mode = "linked"
        self.backoff = 1.0
        await self.worker.db(
            attempt_finish, session.current_attempt_id, outcome=AttemptOutcome.LINKED
        )
        await self._write(
            session,
            status=SessionStatus.AUTHENTICATED,
            linked_phone=f"+{event.phone}",
            linked_jid=event.jid,
            linked_at=timezone.now(),
            has_credentials=True,
            last_error_code="",
            last_error_message="",
            **PAIRING_FIELDS_CLEARED,
        )
        logger.info("company %s linked to %s", self.company_id, mask_phone(event.phone))
        await self._publish(events.status_event(session))

    async def on_Connected(self, event: base.Connected) -> None:
        self.backoff = 1.0
        session = await self._session()
        changes: dict[str, Any] = {
            "status": SessionStatus.CONNECTED,
            "last_error_code": "",
            "last_error_message": "",
        }
        if event.jid and not session.linked_jid:
            changes.update(linked_jid=event.jid, has_credentials=True)
        if event.phone and not session.linked_phone:
            changes["linked_phone"] = f"+{event.phone}"
        if await self._write(session, **changes):
            await self._publish(events.status_event(session), events.connected_event(session))

    async def _go_logged_out(self, reason: str) -> None:
        if self.lost or not await self.worker.db(self._still_owned):
            self._lose("a logout arrived for a session it does not own")
            return  # the owner decides about the credentials
        session = await self._session()
        await self.worker.db(
            self.worker.backend.credentials_delete,
            client_uuid=self.client_uuid,
            device_jid=session.linked_jid or None,
        )
        await self.worker.db(
            attempt_finish,
            session.current_attempt_id,
            outcome=AttemptOutcome.FAILED,
            error_code=errors.LOGGED_OUT,
        )
        await self.worker.db(
            PairingAttempt.objects.create,
            company_id=self.company_id,
            method=AttemptMethod.RESET,
            phone=session.linked_phone,
            started_by="whatsapp",
            finished_at=timezone.now(),
            outcome=AttemptOutcome.CLEARED,
            note=f"logged out: {reason}"[:300],
        )
        await self._write(
            session,
            status=SessionStatus.LOGGED_OUT,
            wants_running=False,
            last_error_code=errors.LOGGED_OUT,
            last_error_message="WhatsApp logged this device out (removed from the "
            "phone or credentials invalid). Link again.",
            **LINK_FIELDS_CLEARED,
            **PAIRING_FIELDS_CLEARED,
        )
        await self._publish(
            events.status_event(session), events.disconnected_event(errors.LOGGED_OUT)
        )
        self._end()

    async def _go_failed(self, code: str, message: str) -> None:
        """Terminal: the session is `failed` until someone links again."""
        await self._stop_with_failure(
            SessionStatus.FAILED, code, message, events.disconnected_event(code)
        )

    async def _stop_with_failure(
        self, status: SessionStatus, code: str, message: str, event: events.Event
    ) -> None:
        """Finish the attempt as failed, store `status` with the reason, publish, stop."""
        session = await self._session()
        await self.worker.db(
            attempt_finish,
            session.current_attempt_id,
            outcome=AttemptOutcome.FAILED,
            error_code=code,
            note=message,
        )
        await self._write(
            session,
            status=status,
            wants_running=False,
            last_error_code=code,
            last_error_message=message[:500],
            **PAIRING_FIELDS_CLEARED,
        )
        await self._publish(events.status_event(session), event)
        self._end()

    async def on_LoggedOut(self, event: base.LoggedOut) -> None:
        code = LOGGED_OUT_REASON_CODES.get(event.reason)
        if code in ACCOUNT_FAILURES:
            await self._go_account_failed(code)
            return
        await self._go_logged_out(event.reason or "logged out")

    async def _go_account_failed(self, code: int) -> None:
        """403/406: WhatsApp deleted the link for good; the store row is gone with it."""
        reason, message = ACCOUNT_FAILURES[code]
        session = await self._session()
        await self.worker.db(
            self.worker.backend.credentials_delete,
            client_uuid=self.client_uuid,
            device_jid=session.linked_jid or None,
        )
        await self._write(session, **LINK_FIELDS_CLEARED)
        await self._go_failed(reason, message)

    async def on_StreamReplaced(self, event: base.StreamReplaced) -> None:
        await self._go_failed(
            errors.STREAM_REPLACED,
            "Another connection took over this WhatsApp "
            "session (stream replaced). Reconnect to take it back.",
        )

    async def on_TemporaryBan(self, event: base.TemporaryBan) -> None:
        minutes = max(1, round(event.expire_seconds / 60)) if event.expire_seconds else None
        wait = f" for about {minutes} minutes" if minutes else ""
        await self._go_failed(
            errors.TEMPORARILY_BANNED,
            f"WhatsApp temporarily banned this account{wait} (code {event.code}).",
        )

    async def on_ClientOutdated(self, event: base.ClientOutdated) -> None:
        await self._go_failed(
            errors.CLIENT_OUTDATED,
            "WhatsApp rejects this client version; the "
            "service needs an update of its WhatsApp library.",
        )

    async def on_ConnectFailure(self, event: base.ConnectFailure) -> None:
        if event.reason in LOGGED_OUT_REASONS:
            await self._go_logged_out(f"connect failure {event.reason}")
        elif event.reason in ACCOUNT_FAILURES:
            await self._go_account_failed(event.reason)
        elif event.reason == 409:
            # Bad user agent: retrying with the same client cannot help.
            await self._go_failed(
                errors.CONNECT_FAILURE,
                "WhatsApp refused this client (409 bad user agent); the service needs an "
                "update of its WhatsApp library.",
            )
        elif event.reason == 402:
            await self.on_TemporaryBan(base.TemporaryBan(code=402))
        elif event.reason == 405:
            await self.on_ClientOutdated(base.ClientOutdated())
        elif self.mode == "linked":
            await self._retry_later(
                errors.CONNECT_FAILURE,
                f"WhatsApp refused the connection ({event.reason}) {event.message}",
            )
        else:
            await self._fail_window(
                errors.CONNECT_FAILURE, f"WhatsApp refused the connection ({event.reason})."
            )

    async def on_Disconnected(self, event: base.Disconnected) -> None:
        if self.mode != "linked":
            return  # a login socket that drops gives new refs or closes its window
        session = await self._session()
        if session.status in (SessionStatus.CONNECTED, SessionStatus.AUTHENTICATED):
            await self._write(session, status=SessionStatus.RECONNECTING)
            await self._publish(
                events.status_event(session), events.disconnected_event("CONNECTION_LOST")
            )

    async def on_KeepAliveTimeout(self, event: base.KeepAliveTimeout) -> None:
        await self.on_Disconnected(base.Disconnected())

    async def on_KeepAliveRestored(self, event: base.KeepAliveRestored) -> None:
        session = await self._session()
        if session.status == SessionStatus.RECONNECTING and self.mode == "linked":
            await self._write(session, status=SessionStatus.CONNECTED)
            await self._publish(events.status_event(session), events.connected_event(session))

    async def on_ConnectError(self, event: base.ConnectError) -> None:
        error = errors.error_from_code(event.error_code, event.message)
        if self.window_ready and not self.window_ready.done():
            self.window_ready.set_exception(error)
            self.window_ready.exception()
        if self.mode == "linked":
            await self._retry_later(event.error_code, event.message)
        else:
            await self._fail_window(event.error_code, event.message)

    async def on_ClientCrashed(self, event: base.ClientCrashed) -> None:
        if self.window_ready and not self.window_ready.done():
            self.window_ready.set_exception(ConnectionClosed(event.message))
            self.window_ready.exception()
        if self.mode == "linked":
            await self._retry_later(
                errors.CONNECT_FAILURE, f"WhatsApp client crashed: {event.message}"
            )
        else:
            await self._fail_window(
                "CONNECTION_CLOSED", f"WhatsApp client crashed: {event.message}"
            )

    async def on_PasskeyRequired(self, event: base.PasskeyRequired) -> None:
        await self._fail_window(
            errors.PASSKEY_REQUIRED,
            "WhatsApp asked the phone to confirm with a passkey, which this service cannot "
            "answer. Allow linking without a passkey on the phone, then start again.",
        )

    async def on_PairError(self, event: base.PairError) -> None:
        await self._fail_window(errors.CONNECT_FAILURE, f"Pairing failed: {event.message}")

    async def _fail_window(self, code: str, message: str) -> None:
        """A linking window could not open or broke: end the attempt, honestly."""
        event: events.Event = (
            events.error_event(errors.error_from_code(code, message))
            if code in errors.ERRORS_BY_CODE
            else events.disconnected_event(code)  # a status reason, not a failed request
        )
        await self._stop_with_failure(SessionStatus.DISCONNECTED, code, message, event)

    async def _retry_later(self, code: str, message: str) -> None:
        """A linked session lost its connection for a reason that may pass: back off, retry."""
        session = await self._session()
        await self._write(
            session,
            status=SessionStatus.RECONNECTING,
            last_error_code=code,
            last_error_message=message[:500],
        )
        await self._publish(events.status_event(session))
        delay = self.backoff
        self.backoff = min(self.backoff * 2, settings.WHATSAPP_RECONNECT_MAX_DELAY)
        if self.reconnect_task is None or self.reconnect_task.done():
            self.reconnect_task = asyncio.get_running_loop().create_task(
                self._reconnect_after(delay)
            )

    async def _reconnect_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        async with self.ops:
            if self.closed:
                return
            session = await self._session()
            if session.wants_running and session.has_credentials and session.linked_jid:
                self.reconnect_task = asyncio.current_task()
                await self._open(device_jid=session.linked_jid)
