"""Linking services (docs/design.md, "Linking rules"): everything that changes a company's WhatsApp link.

Each service validates, takes the company's cross-process lock with a bounded wait, applies the
rules on stored credentials, writes the audit row, asks the owning worker to act, and publishes
what changed. Views, consumers, the admin and commands only call these.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from whatsapp import events, selectors
from whatsapp.backends import get_backend
from whatsapp.errors import (
    AlreadyConnected,
    ConnectionClosed,
    CredentialsConflict,
    NoCredentials,
    OperationTimeout,
    PermissionDenied,
    RateLimited,
    ServiceError,
    WhatsAppUnavailable,
    WorkerUnavailable,
)
from whatsapp.models import (
    LIVE_STATUSES,
    AttemptMethod,
    AttemptOutcome,
    AuditAction,
    Company,
    PairingAttempt,
    PhoneCooldown,
    SessionStatus,
    WhatsAppSession,
)
from whatsapp.privacy import mask_phone
from whatsapp.services.actors import Actor
from whatsapp.services.audit import audit_record
from whatsapp.services.locks import company_lock, deadline_in, remaining
from whatsapp.services.phones import phone_digits, phone_parse
from whatsapp.services.state import (
    PAIRING_FIELDS_CLEARED,
    attempt_finish,
    credentials_clear,
    publish_status,
    session_get,
    session_write,
)
from whatsapp.worker.commands import Op, get_bus

logger = logging.getLogger(__name__)

# Best-effort bound for stopping a client while cleaning up after a failure.
CLEANUP_TIMEOUT = 3.0


@dataclass(frozen=True)
class PairingCode:
    pairing_code: str
    phone_number: str
    expires_at: datetime
    attempt_id: int
    reused: bool

    @property
    def expires_in(self) -> int:
        return max(0, int((self.expires_at - timezone.now()).total_seconds()))


# --- helpers ---------------------------------------------------------------------------------


def _stop_client(session: WhatsAppSession, *, timeout: float = CLEANUP_TIMEOUT) -> None:
    """Ask the owning worker to stop the company's client (credentials stay). Best effort: the
    worker also stops any client whose session no longer wants to run."""
    if not (session.wants_running or session.owner):
        return
    session_write(session, wants_running=False)
    try:
        get_bus().request(company_id=session.company_id, op=Op.STOP, args={}, timeout=timeout)
    except (WorkerUnavailable, OperationTimeout) as error:
        logger.warning(
            "could not stop the client of company %s now (%s); the worker will stop "
            "it on its next pass",
            session.company_id,
            error.code,
        )


def _unlink_on_whatsapp(session: WhatsAppSession, *, deadline: float) -> bool:
    """Ask the owning worker to log the device out on WhatsApp and stop it; True when WhatsApp
    confirmed. Best effort: unreachable, the credentials are deleted here all the same."""
    unlinked = False
    if session.wants_running or session.owner:
        try:
            reply = get_bus().request(
                company_id=session.company_id,
                op=Op.LOGOUT,
                args={},
                timeout=min(remaining(deadline), 10.0),
            )
            unlinked = bool(reply.get("unlinked"))
        except (
            WorkerUnavailable,
            OperationTimeout,
            WhatsAppUnavailable,
            ConnectionClosed,
        ) as error:
            logger.warning(
                "company %s could not be logged out on WhatsApp (%s); deleting the "
                "credentials here",
                session.company_id,
                error.code,
            )
        session.refresh_from_db()
        session_write(session, wants_running=False)
    return unlinked


def _min_code_lifetime() -> timedelta:
    # A code is handed out again only if this much of its window is left; otherwise the phone
    # would get a code that dies while the user is typing it.
    return timedelta(seconds=settings.WHATSAPP_MIN_CODE_LIFETIME)


def _cooldown_check(phone: str) -> None:
    cooldown = PhoneCooldown.objects.filter(phone=phone, until__gt=timezone.now()).first()
    if cooldown:
        seconds = math.ceil((cooldown.until - timezone.now()).total_seconds())
        raise RateLimited(
            f"WhatsApp limited pairing codes for this number. Try again in {_human(seconds)}, "
            "or link with the QR code instead.",
            retry_after=seconds,
            details={"retry_after": seconds, "reason": "whatsapp_rate_limit"},
        )


def _cooldown_start(phone: str, reason: str) -> int:
    seconds = settings.WHATSAPP_RATE_LIMIT_COOLDOWN
    PhoneCooldown.objects.update_or_create(
        phone=phone,
        defaults={"until": timezone.now() + timedelta(seconds=seconds), "reason": reason[:200]},
    )
    return seconds


def _cap_check(phone: str) -> None:
    window = timedelta(seconds=settings.WHATSAPP_PAIRING_CODE_CAP_WINDOW)
    since = timezone.now() - window
    recent = list(
        PairingAttempt.objects.filter(
            method=AttemptMethod.CODE, phone=phone, reached_whatsapp=True, started_at__gte=since
        )
        .order_by("started_at")
        .values_list("started_at", flat=True)[: settings.WHATSAPP_PAIRING_CODE_CAP]
    )
    if len(recent) >= settings.WHATSAPP_PAIRING_CODE_CAP:
        seconds = max(1, math.ceil((recent[0] + window - timezone.now()).total_seconds()))
        raise RateLimited(
            f"Too many pairing codes were requested for this number. Try again in {_human(seconds)}, "
            "or link with the QR code instead.",
            retry_after=seconds,
            details={
                "retry_after": seconds,
                "reason": "pairing_code_cap",
                "cap": settings.WHATSAPP_PAIRING_CODE_CAP,
            },
        )


def _human(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    minutes = math.ceil(seconds / 60)
    if minutes < 90:
        return f"{minutes} minutes"
    return f"{math.ceil(minutes / 60)} hours"


def _fail_linking(session: WhatsAppSession, attempt_id: int, error: ServiceError) -> None:
    """A linking request failed: end the attempt and say so on the session, honestly."""
    attempt_finish(
        attempt_id, outcome=AttemptOutcome.FAILED, error_code=error.code, note=error.message
    )
    _stop_client(session)
    session.refresh_from_db()
    session_write(
        session,
        status=SessionStatus.DISCONNECTED,
        wants_running=False,
        last_error_code=error.code,
        last_error_message=error.message[:500],
        **PAIRING_FIELDS_CLEARED,
    )
    publish_status(session, events.error_event(error))


def _clear_for_new_link(
    session: WhatsAppSession, *, phone: str | None, actor: Actor, replace_existing: bool
) -> None:
    """The stored-credentials rule of docs/design.md, "Linking rules" (stale credentials must never block a new link)."""
    if session.is_live and session.has_credentials:
        if phone is not None and session.linked_phone == phone:
            raise AlreadyConnected(details={"phone_number": phone})
        if replace_existing and not actor.may_reset:
            raise PermissionDenied(
                "A pairing link cannot replace a live WhatsApp link; ask your "
                "administrator to reset it."
            )
        if not replace_existing:
            masked = mask_phone(session.linked_phone)
            raise CredentialsConflict(
                f"WhatsApp is connected with another phone ({masked}). Pass replace_existing: true "
                "to replace it, or reset the credentials first.",
                details={"stored_phone": masked},
            )
        _clear_before_link(session, actor, reason=f"replaced by a link for {mask_phone(phone)}")
        return
    if session.has_credentials:
        _clear_before_link(
            session,
            actor,
            reason=f"stale credentials (status {session.status}) cleaned before a new link",
        )


def _clear_before_link(session: WhatsAppSession, actor: Actor, *, reason: str) -> None:
    _stop_client(session)
    credentials_clear(
        session=session, backend=get_backend(), actor_label=actor.label, reason=reason
    )
    publish_status(session, events.credentials_reset_event())


# --- services --------------------------------------------------------------------------------


def session_start(*, company: Company, actor: Actor, via_socket: bool = False) -> WhatsAppSession:
    """Start linking by QR. Idempotent: a session already linking or linked is returned as is."""
    session = session_get(company)
    deadline = deadline_in()
    with company_lock(session_id=session.pk, deadline=deadline):
        session.refresh_from_db()
        if session.is_pairing and session.wants_running:
            return session
        if session.is_live and session.has_credentials:
            return session
        _clear_for_new_link(session, phone=None, actor=actor, replace_existing=False)
        attempt = PairingAttempt.objects.create(
            company=company, method=AttemptMethod.QR, started_by=actor.label, via_socket=via_socket
        )
        session_write(
            session,
            status=SessionStatus.CONNECTING,
            wants_running=True,
            last_error_code="",
            last_error_message="",
            **{**PAIRING_FIELDS_CLEARED, "current_attempt": attempt},
        )
        publish_status(session)
        try:
            get_bus().request(
                company_id=company.pk,
                op=Op.START,
                args={"attempt_id": attempt.pk},
                timeout=remaining(deadline),
            )
        except ServiceError as error:
            _fail_linking(session, attempt.pk, error)
            raise
    session.refresh_from_db()
    return session


def pairing_code_request(
    *,
    company: Company,
    phone_number: object,
    actor: Actor,
    replace_existing: bool = False,
    via_socket: bool = False,
) -> PairingCode:
    """Get a pairing code for `phone_number`; repeats inside a live window get the same code."""
    phone = phone_parse(phone_number)
    _cooldown_check(phone)
    session = session_get(company)
    deadline = deadline_in()
    with company_lock(session_id=session.pk, deadline=deadline):
        session.refresh_from_db()
        _clear_for_new_link(session, phone=phone, actor=actor, replace_existing=replace_existing)
        if (
            session.status == SessionStatus.CODE_READY
            and session.pairing_phone == phone
            and session.pairing_code
            and session.current_attempt_id is not None
            and not selectors.owner_dead(session)  # a dead worker's window died with it
            and session.pairing_expires_at
            and session.pairing_expires_at > timezone.now() + _min_code_lifetime()
        ):
            return PairingCode(
                session.pairing_code,
                phone,
                session.pairing_expires_at,
                session.current_attempt_id,
                reused=True,
            )
        _cap_check(phone)
        if session.current_attempt_id:
            attempt_finish(
                session.current_attempt_id,
                outcome=AttemptOutcome.SUPERSEDED,
                note=f"superseded by a code request for {mask_phone(phone)}",
            )
        attempt = PairingAttempt.objects.create(
            company=company,
            method=AttemptMethod.CODE,
            phone=phone,
            started_by=actor.label,
            via_socket=via_socket,
        )
        keep_window = session.is_pairing and session.wants_running
        session_write(
            session,
            wants_running=True,
            last_error_code="",
            last_error_message="",
            current_attempt=attempt,
            pairing_code="",
            pairing_phone="",
            pairing_expires_at=None,
            **({} if keep_window else {"status": SessionStatus.CONNECTING}),
        )
        if not keep_window:
            publish_status(session)
        try:
            reply = get_bus().request(
                company_id=company.pk,
                op=Op.PAIRING_CODE,
                args={
                    "phone": phone,
                    "phone_digits": phone_digits(phone),
                    "attempt_id": attempt.pk,
                },
                timeout=remaining(deadline),
            )
        except RateLimited as error:
            seconds = _cooldown_start(phone, error.message)
            limited = RateLimited(
                "WhatsApp refused more pairing codes for this number for now. Try again in "
                f"{_human(seconds)}, or link with the QR code instead.",
                retry_after=seconds,
                details={"retry_after": seconds, "reason": "whatsapp_rate_limit"},
            )
            _fail_linking(session, attempt.pk, limited)
            raise limited from None
        except ServiceError as error:
            _fail_linking(session, attempt.pk, error)
            raise
    expires_at = datetime.fromisoformat(reply["expires_at"])
    logger.info(
        "pairing code issued for company %s, phone %s, by %s",
        company.pk,
        mask_phone(phone),
        actor.label,
    )
    return PairingCode(reply["pairing_code"], phone, expires_at, attempt.pk, reused=False)


def session_reconnect(*, company: Company, actor: Actor) -> WhatsAppSession:
    """Reconnect with the stored credentials (a fresh connection, same device)."""
    session = session_get(company)
    deadline = deadline_in()
    with company_lock(session_id=session.pk, deadline=deadline):
        session.refresh_from_db()
        if not session.has_credentials:
            raise NoCredentials()
        session_write(
            session,
            status=SessionStatus.RECONNECTING,
            wants_running=True,
            last_error_code="",
            last_error_message="",
        )
        publish_status(session)
        audit_record(company=company, action=AuditAction.RECONNECT, actor=actor)
        get_bus().request(
            company_id=company.pk, op=Op.RECONNECT, args={}, timeout=remaining(deadline)
        )
        logger.info("reconnect of company %s asked by %s", company.pk, actor.label)
    session.refresh_from_db()
    return session


def session_logout(*, company: Company, actor: Actor) -> dict:
    """Unlink on WhatsApp when it is reachable, and delete the credentials in any case."""
    if not actor.may_reset:
        raise PermissionDenied("A pairing link cannot log a company out.")
    session = session_get(company)
    deadline = deadline_in()
    with company_lock(session_id=session.pk, deadline=deadline):
        session.refresh_from_db()
        unlinked_on_whatsapp = _unlink_on_whatsapp(session, deadline=deadline)
        had_credentials = session.has_credentials
        audit_record(
            company=company,
            action=AuditAction.LOGOUT,
            actor=actor,
            detail=f"unlinked on WhatsApp: {'yes' if unlinked_on_whatsapp else 'no'}",
        )
        credentials_clear(
            session=session, backend=get_backend(), actor_label=actor.label, reason="logout"
        )
        publish_status(session, events.disconnected_event("LOGGED_OUT"))
    return {"had_credentials": had_credentials, "unlinked_on_whatsapp": unlinked_on_whatsapp}


def credentials_reset(*, company: Company, actor: Actor) -> PairingAttempt:
    """Stop the session, delete the credentials, clear the cached state, notify subscribers."""
    if not actor.may_reset:
        raise PermissionDenied("A pairing link cannot reset credentials; ask your administrator.")
    session = session_get(company)
    deadline = deadline_in()
    with company_lock(session_id=session.pk, deadline=deadline):
        session.refresh_from_db()
        if session.has_credentials and session.status in LIVE_STATUSES:
            # The phone should not keep listing a device whose keys we are about to delete.
            _unlink_on_whatsapp(session, deadline=deadline)
        else:
            _stop_client(session, timeout=min(remaining(deadline), 10.0))
        session.refresh_from_db()
        audit = credentials_clear(
            session=session, backend=get_backend(), actor_label=actor.label, reason="reset"
        )
        publish_status(session, events.credentials_reset_event())
    return audit


def attempt_cancel(*, company: Company, attempt_id: int, reason: str) -> bool:
    """Cancel a linking attempt (e.g. abandoned by its last WebSocket subscriber)."""
    session = session_get(company)
    with company_lock(session_id=session.pk, deadline=deadline_in()):
        session.refresh_from_db()
        if session.current_attempt_id != attempt_id or not session.is_pairing:
            return False
        attempt_finish(attempt_id, outcome=AttemptOutcome.CANCELLED, note=reason)
        _stop_client(session)
        session.refresh_from_db()
        session_write(
            session,
            status=SessionStatus.DISCONNECTED,
            wants_running=False,
            **PAIRING_FIELDS_CLEARED,
        )
        publish_status(session, events.disconnected_event("CANCELLED"))
    return True
