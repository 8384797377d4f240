"""Read-side queries: what the API, pages and admin show (no writes here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, QuerySet
from django.utils import timezone

from whatsapp.backends import get_backend
from whatsapp.errors import CompanyNotFound, InternalError, ServiceError, WorkerUnavailable
from whatsapp.models import Company, SessionStatus, WhatsAppSession, Worker
from whatsapp.qr import qr_png_data_url
from whatsapp.services.state import session_get
from whatsapp.worker import liveness


def _iso(value):
    return value.isoformat() if value else None


def session_snapshot(session: WhatsAppSession) -> dict:
    data = {
        "status": status_shown(session),
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
    session = session_get(company)
    in_store = get_backend().credentials_exists(
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
    shown = status_shown(session)
    return {
        "connected": shown == SessionStatus.CONNECTED,
        "status": shown,
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
            round((session.lease_expires_at - now).total_seconds(), 1)
            if lease_valid and session.lease_expires_at
            else None
        ),
        "backend": settings.WHATSAPP_BACKEND,
    }


# --- which companies a caller may see ---------------------------------------------------------
# Company-scoped callers get COMPANY_NOT_FOUND for any other company, exactly as for one that
# does not exist: existence never leaks.


def companies_visible(*, company_id: int | None) -> QuerySet[Company]:
    """Every company for global keys and staff (`company_id` None), else just that one."""
    companies = Company.objects.all()
    if company_id is not None:
        companies = companies.filter(pk=company_id)
    return companies


def company_visible(*, slug: str, company_id: int | None) -> Company:
    company = companies_visible(company_id=company_id).filter(slug=slug).first()
    if company is None:
        raise CompanyNotFound()
    return company


# --- liveness --------------------------------------------------------------------------------


def _fresh_workers() -> QuerySet[Worker]:
    since = timezone.now() - timedelta(seconds=settings.WHATSAPP_LEASE_TTL)
    return Worker.objects.filter(heartbeat_at__gte=since, stopped_at__isnull=True)


def live_workers() -> QuerySet[Worker]:
    """Workers whose heartbeat is younger than a lease, that have not said they stopped and,
    external ones on PostgreSQL, whose liveness lock is held: a killed worker drops out at once
    (`whatsapp.worker.liveness`)."""
    fresh = _fresh_workers()
    if settings.WHATSAPP_WORKER_MODE == "inprocess" or not liveness.supported():
        return fresh
    alive = liveness.live_worker_ids(fresh.values_list("worker_id", flat=True))
    return fresh.filter(worker_id__in=alive)


def owner_dead(session: WhatsAppSession) -> bool:
    """Whether the session names an owner that no longer lives (its runner died with it)."""
    if not session.owner:
        return False
    if not _fresh_workers().filter(worker_id=session.owner).exists():
        return True
    if settings.WHATSAPP_WORKER_MODE == "inprocess" or not liveness.supported():
        return False
    return session.owner not in liveness.live_worker_ids([session.owner])


def status_shown(session: WhatsAppSession) -> str:
    """The status to show: a link whose owner died is offline, whatever its row still says,
    until another worker resumes it."""
    online = (SessionStatus.CONNECTED, SessionStatus.AUTHENTICATED)
    if session.status in online and owner_dead(session):
        return str(SessionStatus.RECONNECTING)
    return str(session.status)


def _check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:
        return {"ok": False, "error": type(error).__name__}
    return {"ok": True}


def _check_channel_layer() -> dict[str, Any]:
    from channels.layers import get_channel_layer

    try:
        layer = get_channel_layer()
        if layer is None:
            return {"ok": False, "error": "no channel layer configured"}
        if settings.REDIS_URL and "Redis" in type(layer).__name__:
            import redis

            client = redis.Redis.from_url(
                settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
            )
            try:
                client.ping()
            finally:
                client.close()
    except Exception as error:
        return {"ok": False, "error": type(error).__name__}
    return {"ok": True}


def _check_workers() -> dict[str, Any]:
    from whatsapp.worker.commands import local_bus

    mode = settings.WHATSAPP_WORKER_MODE
    try:
        live = live_workers().count()
    except Exception as error:
        return {"ok": False, "live": 0, "mode": mode, "error": type(error).__name__}
    if mode == "inprocess":
        worker = local_bus().worker
        in_this_process = worker is not None and worker.accepting
        return {"ok": in_this_process, "live": max(live, int(in_this_process)), "mode": mode}
    return {"ok": live > 0, "live": live, "mode": mode}


def worker_leases() -> dict[str, int]:
    """Live workers and how many sessions each owns right now."""
    live = list(live_workers().values_list("worker_id", flat=True))
    owned = dict(
        WhatsAppSession.objects.filter(owner__in=live, lease_expires_at__gt=timezone.now())
        .values_list("owner")
        .annotate(n=Count("id"))
        .values_list("owner", "n")
    )
    return {worker_id: owned.get(worker_id, 0) for worker_id in sorted(live)}


@dataclass(frozen=True)
class ServiceHealth:
    checks: dict[str, dict[str, Any]]
    error: ServiceError | None  # None when healthy


def service_health() -> ServiceHealth:
    """`GET /api/v1/health/`: database, channel layer and live workers."""
    checks = {
        "database": _check_database(),
        "channel_layer": _check_channel_layer(),
        "workers": _check_workers(),
    }
    failing = [name for name, check in checks.items() if not check["ok"]]
    if not failing:
        return ServiceHealth(checks, None)
    cls = WorkerUnavailable if failing == ["workers"] else InternalError
    return ServiceHealth(checks, cls(f"Unhealthy: {', '.join(failing)}."))
