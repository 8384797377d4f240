"""Persisting session state: every status change is written here and then published.

Writes name their fields (`update_fields` / `.update()`), so a state change never overwrites the
lease or lock columns another process may be changing at the same moment.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db.models import Field
from django.utils import timezone

from whatsapp import events
from whatsapp.backends.base import Backend
from whatsapp.models import (
    AttemptMethod,
    AttemptOutcome,
    Company,
    PairingAttempt,
    SessionStatus,
    WhatsAppSession,
)
from whatsapp.privacy import mask_phone

logger = logging.getLogger(__name__)

PAIRING_FIELDS_CLEARED: dict[str, Any] = {
    "qr_code": "",
    "qr_expires_at": None,
    "window_expires_at": None,
    "pairing_code": "",
    "pairing_phone": "",
    "pairing_expires_at": None,
    "current_attempt": None,
}
LINK_FIELDS_CLEARED: dict[str, Any] = {
    "linked_phone": "",
    "linked_jid": "",
    "linked_at": None,
    "has_credentials": False,
}


def session_get(company: Company) -> WhatsAppSession:
    session, _ = WhatsAppSession.objects.select_related("company").get_or_create(company=company)
    return session


def session_write(session: WhatsAppSession, *, owner: str | None = None, **changes: Any) -> bool:
    """Apply `changes` to the session row (and the instance). With `owner`, only while that
    worker still owns the session under a lease that has not run out (the fence: a worker that
    stalled past its lease writes nothing, even before another one claimed the session); returns
    False when the write is dropped."""
    if "status" in changes and changes["status"] != session.status:
        changes.setdefault("status_changed_at", timezone.now())
    columns: dict[str, Any] = {}
    for name, value in changes.items():
        field = WhatsAppSession._meta.get_field(name)
        assert isinstance(field, Field), f"{name} is not a concrete field"
        columns[field.attname] = value.pk if hasattr(value, "pk") and field.is_relation else value
    rows = WhatsAppSession.objects.filter(pk=session.pk)
    if owner is not None:
        rows = rows.filter(owner=owner, lease_expires_at__gt=timezone.now())
    if not rows.update(**columns):
        return False
    for name, value in changes.items():
        setattr(session, name, value)
    return True


def attempt_finish(
    attempt_id: int | None, *, outcome: str, error_code: str = "", note: str = ""
) -> None:
    if not attempt_id:
        return
    updates: dict[str, Any] = {"outcome": outcome, "finished_at": timezone.now()}
    if error_code:
        updates["error_code"] = error_code
    if note:
        updates["note"] = note[:300]
    PairingAttempt.objects.filter(pk=attempt_id, outcome="").update(**updates)


def credentials_clear(
    *, session: WhatsAppSession, backend: Backend, actor_label: str, reason: str
) -> PairingAttempt:
    """Delete the company's credentials (device + cascaded rows) and audit it.

    The caller holds the company lock and has stopped any client of the company first."""
    deleted = backend.credentials_delete(
        client_uuid=str(session.client_uuid), device_jid=session.linked_jid or None
    )
    stored_phone = session.linked_phone
    attempt_finish(
        session.current_attempt_id, outcome=AttemptOutcome.CANCELLED, note="credentials reset"
    )
    audit = PairingAttempt.objects.create(
        company_id=session.company_id,
        method=AttemptMethod.RESET,
        phone=stored_phone,
        started_by=actor_label,
        finished_at=timezone.now(),
        outcome=AttemptOutcome.CLEARED,
        note=f"{reason}; {deleted} store rows deleted"[:300],
    )
    session_write(
        session,
        status=SessionStatus.DISCONNECTED,
        wants_running=False,
        last_error_code="",
        last_error_message="",
        **LINK_FIELDS_CLEARED,
        **PAIRING_FIELDS_CLEARED,
    )
    logger.info(
        "credentials of company %s cleared (%s, phone %s, by %s, %d rows)",
        session.company_id,
        reason,
        mask_phone(stored_phone),
        actor_label,
        deleted,
    )
    return audit


def publish_status(session: WhatsAppSession, *extra: events.Event) -> None:
    events.publish(session.company_id, [events.status_event(session), *extra])
