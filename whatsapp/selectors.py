"""Read-side queries: what the API, pages and admin show (no writes here)."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from whatsapp.models import Company, SessionStatus, WhatsAppSession
from whatsapp.qr import qr_png_data_url
from whatsapp.services.state import session_get


def _iso(value):
    return value.isoformat() if value else None


def session_snapshot(session: WhatsAppSession) -> dict:
    data = {
        "status": session.status,
        "status_changed_at": _iso(session.status_changed_at),
        "linked_phone": session.linked_phone or None,
        "linked_at": _iso(session.linked_at),
        "last_error_code": session.last_error_code or None,
        "last_error": session.last_error_message or None,
        "has_credentials": session.has_credentials,
        "attempt_id": session.current_attempt_id,
        "qr": None,
        "pairing_code": None,
    }
    now = timezone.now()
    if session.is_pairing and session.qr_code and (session.qr_expires_at or now) >= now:
        data["qr"] = {
            "qr": session.qr_code,
            "image": qr_png_data_url(session.qr_code),
            "expires_at": _iso(session.qr_expires_at),
        }
    if (
        session.status == SessionStatus.CODE_READY
        and session.pairing_code
        and session.pairing_expires_at
        and session.pairing_expires_at > now
    ):
        data["pairing_code"] = {
            "pairing_code": session.pairing_code,
            "phone_number": session.pairing_phone,
            "expires_at": _iso(session.pairing_expires_at),
            "expires_in": int((session.pairing_expires_at - now).total_seconds()),
        }
    return data


def credentials_status(company: Company) -> dict:
    from whatsapp.services.linking import backend

    session = session_get(company)
    in_store = backend().credentials_exists(
        client_uuid=str(session.client_uuid), device_jid=session.linked_jid or None
    )
    has_credentials = session.has_credentials or in_store
    return {
        "has_credentials": has_credentials,
        "stored_phone": session.linked_phone or None,
        "linked_at": _iso(session.linked_at),
        "can_reset": has_credentials or session.wants_running,
    }


def session_health(company: Company) -> dict:
    session = session_get(company)
    now = timezone.now()
    lease_valid = bool(
        session.owner and session.lease_expires_at and session.lease_expires_at > now
    )
    return {
        "connected": session.status == SessionStatus.CONNECTED,
        "status": session.status,
        "since": _iso(session.status_changed_at),
        "last_error_code": session.last_error_code or None,
        "last_error": session.last_error_message or None,
        "worker": session.owner if lease_valid else None,
        "lease_age_seconds": (
            round((now - session.lease_acquired_at).total_seconds(), 1)
            if lease_valid and session.lease_acquired_at
            else None
        ),
        "lease_expires_in_seconds": (
            round((session.lease_expires_at - now).total_seconds(), 1) if lease_valid else None
        ),
        "backend": settings.WHATSAPP_BACKEND,
    }
