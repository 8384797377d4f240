"""REST API v1 (docs/design.md, "REST API"): thin views over the services and selectors.

Each view validates input, calls one service or selector, and returns `{"success": true, ...}`
with the data fields flat. Errors are raised and rendered by `exceptions.api_exception_handler`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from whatsapp import selectors
from whatsapp.api import serializers as s
from whatsapp.api.access import companies_visible, company_visible
from whatsapp.api.auth import actor_for, scoped_company_id
from whatsapp.api.exceptions import error_body
from whatsapp.errors import ERRORS_BY_CODE, CompanyNotFound, NotPairing, ValidationFailed
from whatsapp.models import SLUG_VALIDATOR, ApiKey, Company, PairingAttempt
from whatsapp.services import linking
from whatsapp.services.companies import company_create
from whatsapp.services.links import pairing_link_create
from whatsapp.services.state import session_get

logger = logging.getLogger(__name__)

SLUG_PATTERN = SLUG_VALIDATOR.regex.pattern

SLUG_PARAMETER = OpenApiParameter(
    "slug",
    str,
    OpenApiParameter.PATH,
    pattern=SLUG_PATTERN,
    description="The company's slug (its public id)",
)


def errors(*codes: str) -> dict[int, OpenApiResponse]:
    """Schema responses for these error codes, grouped by HTTP status."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(ERRORS_BY_CODE[code].http_status, []).append(code)
    return {
        http_status: OpenApiResponse(s.ErrorSerializer, description=" | ".join(grouped))
        for http_status, grouped in by_status.items()
    }


AUTH_ERRORS = ("NOT_AUTHENTICATED", "RATE_LIMITED", "INTERNAL_ERROR")
COMPANY_ERRORS = (*AUTH_ERRORS, "COMPANY_NOT_FOUND")
# Views that read a body or query parameters can also answer VALIDATION_ERROR.
INPUT = "VALIDATION_ERROR"
# What a linking call that reaches WhatsApp (through the worker) can fail with.
WORKER_ERRORS = ("CONNECTION_CLOSED", "WHATSAPP_UNAVAILABLE", "WORKER_UNAVAILABLE", "TIMEOUT")


def ok(data: dict[str, Any] | None = None, *, http_status: int = status.HTTP_200_OK) -> Response:
    return Response({"success": True, **(data or {})}, status=http_status)


def page(request: Request, queryset: QuerySet, render) -> dict[str, Any]:
    query = s.PageQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    limit, offset = query.validated_data["limit"], query.validated_data["offset"]
    count = queryset.count()
    url = request.build_absolute_uri()
    next_url = (
        replace_query_param(replace_query_param(url, "limit", limit), "offset", offset + limit)
        if offset + limit < count
        else None
    )
    previous_url = None
    if offset > 0:
        previous_url = replace_query_param(url, "limit", limit)
        previous_url = (
            replace_query_param(previous_url, "offset", offset - limit)
            if offset - limit > 0
            else remove_query_param(previous_url, "offset")
        )
    return {
        "count": count,
        "next": next_url,
        "previous": previous_url,
        "results": [render(item) for item in queryset[offset : offset + limit]],
    }


class CanCreateCompanies(BasePermission):
    message = "Only staff and global API keys can create companies."

    def has_permission(self, request: Request, view) -> bool:
        if request.method != "POST":
            return True
        return scoped_company_id(request) is None and (
            isinstance(request.auth, ApiKey) or bool(getattr(request.user, "is_staff", False))
        )


class CompanyView(APIView):
    # A view under /companies/{slug}/. The company is resolved for the caller before the
    # throttles run, so a caller who may not see it gets COMPANY_NOT_FOUND and never uses up
    # that company's limits.
    company: Company

    def check_permissions(self, request: Request) -> None:
        super().check_permissions(request)
        self.company = company_visible(
            slug=self.kwargs["slug"], company_id=scoped_company_id(request)
        )


def company_data(company: Company) -> dict[str, Any]:
    return {
        "slug": company.slug,
        "name": company.name,
        "created_at": company.created_at.isoformat(),
        "session": selectors.session_snapshot(session_get(company)),
    }


def attempt_data(attempt: PairingAttempt) -> dict[str, Any]:
    return {
        "id": attempt.pk,
        "method": attempt.method,
        "phone": attempt.phone or None,
        "started_by": attempt.started_by,
        "started_at": attempt.started_at.isoformat(),
        "finished_at": attempt.finished_at.isoformat() if attempt.finished_at else None,
        "qr_rotations": attempt.qr_rotations,
        "outcome": attempt.outcome or None,
        "error_code": attempt.error_code or None,
        "via_socket": attempt.via_socket,
        "note": attempt.note,
    }


# --- companies -----------------------------------------------------------------------------


class CompanyListView(APIView):
    permission_classes = [*APIView.permission_classes, CanCreateCompanies]

    @extend_schema(
        operation_id="companies_list",
        tags=["companies"],
        summary="Companies the caller may see",
        parameters=[s.PageQuerySerializer],
        responses={200: s.CompanyListResponseSerializer, **errors(INPUT, *AUTH_ERRORS)},
    )
    def get(self, request: Request) -> Response:
        companies = (
            companies_visible(company_id=scoped_company_id(request))
            .select_related("session")
            .order_by("slug")
        )
        return ok(page(request, companies, company_data))

    @extend_schema(
        operation_id="companies_create",
        tags=["companies"],
        summary="Create a company (staff or a global API key)",
        request=s.CompanyCreateSerializer,
        responses={
            201: s.CompanyResponseSerializer,
            **errors(INPUT, *AUTH_ERRORS, "PERMISSION_DENIED"),
        },
    )
    def post(self, request: Request) -> Response:
        data = s.CompanyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        company = company_create(
            slug=data.validated_data["slug"],
            name=data.validated_data["name"],
            actor=actor_for(request),
        )
        return ok(company_data(company), http_status=status.HTTP_201_CREATED)


class CompanyDetailView(CompanyView):
    @extend_schema(
        operation_id="companies_retrieve",
        tags=["companies"],
        summary="A company with its session",
        parameters=[SLUG_PARAMETER],
        responses={200: s.CompanyResponseSerializer, **errors(*COMPANY_ERRORS)},
    )
    def get(self, request: Request, slug: str) -> Response:
        return ok(company_data(self.company))


# --- session -------------------------------------------------------------------------------


class SessionView(CompanyView):
    @extend_schema(
        operation_id="session_retrieve",
        tags=["session"],
        summary="Status, linked phone, last error, and the live QR or code if any",
        parameters=[SLUG_PARAMETER],
        responses={200: s.SessionResponseSerializer, **errors(*COMPANY_ERRORS)},
    )
    def get(self, request: Request, slug: str) -> Response:
        return ok(selectors.session_snapshot(session_get(self.company)))


class SessionStartView(CompanyView):
    @extend_schema(
        operation_id="session_start",
        tags=["session"],
        request=None,
        summary="Start linking by QR (idempotent)",
        description="Starts a QR linking attempt; QR codes then arrive as `qr` events and at "
        "`GET .../session/qr/`. A session already linking or linked is returned as is. Stale "
        "credentials are deleted first (audited).",
        parameters=[SLUG_PARAMETER],
        responses={202: s.SessionResponseSerializer, **errors(*COMPANY_ERRORS, *WORKER_ERRORS)},
    )
    def post(self, request: Request, slug: str) -> Response:
        session = linking.session_start(company=self.company, actor=actor_for(request))
        return ok(selectors.session_snapshot(session), http_status=status.HTTP_202_ACCEPTED)


class SessionQrView(CompanyView):
    @extend_schema(
        operation_id="session_qr",
        tags=["session"],
        summary="The live QR code",
        parameters=[SLUG_PARAMETER],
        responses={200: s.QrResponseSerializer, **errors(*COMPANY_ERRORS, "NOT_PAIRING")},
    )
    def get(self, request: Request, slug: str) -> Response:
        snapshot = selectors.session_snapshot(session_get(self.company))
        if snapshot["qr"] is None:
            if snapshot["status"] == "connecting":
                raise NotPairing(
                    "The linking attempt has no QR code yet; try again in a moment.",
                    details={"status": snapshot["status"]},
                )
            raise NotPairing(details={"status": snapshot["status"]})
        return ok(snapshot["qr"])


class PairingCodeView(CompanyView):
    @extend_schema(
        operation_id="session_pairing_code",
        tags=["session"],
        summary="Get an 8-character pairing code for a phone",
        description="Repeats for the same phone inside a live window return the same code; a "
        "request for another phone supersedes the attempt. Enter the code on the phone: "
        "Settings -> Linked devices -> Link a device -> Link with phone number instead.",
        parameters=[SLUG_PARAMETER],
        request=s.PairingCodeRequestSerializer,
        responses={
            200: s.PairingCodeResponseSerializer,
            **errors(
                INPUT,
                *COMPANY_ERRORS,
                "INVALID_PHONE",
                "ALREADY_CONNECTED",
                "CREDENTIALS_CONFLICT",
                *WORKER_ERRORS,
            ),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        data = s.PairingCodeRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        code = linking.pairing_code_request(
            company=self.company,
            actor=actor_for(request),
            phone_number=data.validated_data["phone_number"],
            replace_existing=data.validated_data["replace_existing"],
        )
        return ok(
            {
                "pairing_code": code.pairing_code,
                "phone_number": code.phone_number,
                "expires_at": code.expires_at.isoformat(),
                "expires_in": code.expires_in,
                "attempt_id": code.attempt_id,
            }
        )


class ReconnectView(CompanyView):
    @extend_schema(
        operation_id="session_reconnect",
        tags=["session"],
        request=None,
        summary="Reconnect with the stored credentials",
        parameters=[SLUG_PARAMETER],
        responses={
            202: s.SessionResponseSerializer,
            **errors(*COMPANY_ERRORS, "NO_CREDENTIALS", *WORKER_ERRORS),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        session = linking.session_reconnect(company=self.company, actor=actor_for(request))
        return ok(selectors.session_snapshot(session), http_status=status.HTTP_202_ACCEPTED)


class LogoutView(CompanyView):
    @extend_schema(
        operation_id="session_logout",
        tags=["session"],
        request=None,
        summary="Unlink on WhatsApp (if reachable) and delete the credentials",
        parameters=[SLUG_PARAMETER],
        responses={200: s.LogoutResponseSerializer, **errors(*COMPANY_ERRORS, "TIMEOUT")},
    )
    def post(self, request: Request, slug: str) -> Response:
        result = linking.session_logout(company=self.company, actor=actor_for(request))
        return ok({**result, "session": selectors.session_snapshot(session_get(self.company))})


class SessionHealthView(CompanyView):
    @extend_schema(
        operation_id="session_health",
        tags=["session"],
        summary="Connected?, since, last error, owning worker, lease age",
        parameters=[SLUG_PARAMETER],
        responses={200: s.SessionHealthResponseSerializer, **errors(*COMPANY_ERRORS)},
    )
    def get(self, request: Request, slug: str) -> Response:
        return ok(selectors.session_health(self.company))


# --- credentials, attempts, links ----------------------------------------------------------


class CredentialsView(CompanyView):
    @extend_schema(
        operation_id="credentials_retrieve",
        tags=["credentials"],
        summary="Whether credentials are stored, and for which phone",
        parameters=[SLUG_PARAMETER],
        responses={200: s.CredentialsResponseSerializer, **errors(*COMPANY_ERRORS)},
    )
    def get(self, request: Request, slug: str) -> Response:
        return ok(selectors.credentials_status(self.company))

    @extend_schema(
        operation_id="credentials_reset",
        tags=["credentials"],
        summary="Reset: stop the session, delete the credentials, notify subscribers",
        parameters=[SLUG_PARAMETER],
        responses={200: s.CredentialsResetResponseSerializer, **errors(*COMPANY_ERRORS, "TIMEOUT")},
    )
    def delete(self, request: Request, slug: str) -> Response:
        audit = linking.credentials_reset(company=self.company, actor=actor_for(request))
        return ok({**selectors.credentials_status(self.company), "reset_attempt_id": audit.pk})


class AttemptListView(CompanyView):
    @extend_schema(
        operation_id="attempts_list",
        tags=["attempts"],
        summary="Pairing attempt history, newest first",
        parameters=[SLUG_PARAMETER, s.PageQuerySerializer],
        responses={200: s.AttemptListResponseSerializer, **errors(INPUT, *COMPANY_ERRORS)},
    )
    def get(self, request: Request, slug: str) -> Response:
        attempts = PairingAttempt.objects.filter(company=self.company).order_by(
            "-started_at", "-id"
        )
        return ok(page(request, attempts, attempt_data))


class PairingLinkView(CompanyView):
    @extend_schema(
        operation_id="pairing_links_create",
        tags=["pairing links"],
        summary="A signed, expiring link to the end-user pairing page",
        description="Revoke every link of a company by rotating its link secret (admin).",
        parameters=[SLUG_PARAMETER],
        request=s.PairingLinkCreateSerializer,
        responses={201: s.PairingLinkResponseSerializer, **errors(INPUT, *COMPANY_ERRORS)},
    )
    def post(self, request: Request, slug: str) -> Response:
        data = s.PairingLinkCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        link = pairing_link_create(
            company=self.company,
            actor=actor_for(request),
            expires_in=data.validated_data.get("expires_in"),
        )
        return ok(
            {"url": link.url, "expires_at": link.expires_at.isoformat()},
            http_status=status.HTTP_201_CREATED,
        )


# --- service health ------------------------------------------------------------------------


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
    from whatsapp.bus import live_workers, local_bus

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


class ServiceHealthView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(
        operation_id="service_health",
        tags=["service"],
        auth=[],
        summary="Service health: database, channel layer, live workers (public)",
        responses={
            200: s.ServiceHealthSerializer,
            503: OpenApiResponse(s.ServiceHealthSerializer, description="unhealthy"),
        },
    )
    def get(self, request: Request) -> Response:
        checks = {
            "database": _check_database(),
            "channel_layer": _check_channel_layer(),
            "workers": _check_workers(),
        }
        failing = [name for name, check in checks.items() if not check["ok"]]
        if not failing:
            return ok({"status": "ok", "checks": checks})
        code = "WORKER_UNAVAILABLE" if failing == ["workers"] else "INTERNAL_ERROR"
        body = error_body(code, f"Unhealthy: {', '.join(failing)}.")
        return Response(
            {**body, "status": "unhealthy", "checks": checks},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )


# --- sandbox phone (docs/design.md, "Backends") --------------------------------------------------------


class SandboxCaller(BasePermission):
    """Any authenticated caller, or a valid pairing link token in the body (the end-user page's
    "simulate the phone" helper). Outside sandbox mode these routes do not exist (404)."""

    def has_permission(self, request: Request, view) -> bool:
        # SandboxView.initial already answered 404 outside sandbox mode.
        if request.user is not None and getattr(request.user, "is_authenticated", False):
            return True
        token = request.data.get("link_token") if isinstance(request.data, dict) else None
        if isinstance(token, str) and token:
            from whatsapp.services.links import LinkInvalid, pairing_link_resolve

            try:
                pairing_link_resolve(token)
            except LinkInvalid:
                return False
            return True
        return False


class SandboxView(APIView):
    permission_classes = [SandboxCaller]

    def initial(self, request: Request, *args, **kwargs) -> None:
        # Outside sandbox mode the routes do not exist, whoever asks: 404 before authentication.
        if settings.WHATSAPP_BACKEND != "sandbox":
            raise CompanyNotFound("No such endpoint or company.")
        super().initial(request, *args, **kwargs)

    def permission_denied(self, request: Request, message=None, code=None):
        from rest_framework.exceptions import NotAuthenticated

        raise NotAuthenticated(
            "Authenticate with an API key or staff session, or pass a valid link_token."
        )


class SandboxPhoneLinkView(SandboxView):
    @extend_schema(
        operation_id="sandbox_phone_link",
        tags=["sandbox"],
        summary="Sandbox only: the simulated phone enters a pairing code or scans a QR",
        request=s.SandboxLinkSerializer,
        responses={
            200: s.SandboxLinkResponseSerializer,
            **errors(INPUT, *AUTH_ERRORS, "COMPANY_NOT_FOUND"),
        },
    )
    def post(self, request: Request) -> Response:
        from whatsapp.sandbox import phone

        data = s.SandboxLinkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        number = data.validated_data["phone_number"]
        try:
            if data.validated_data.get("pairing_code"):
                device = phone.link_with_code(number, data.validated_data["pairing_code"])
            else:
                device = phone.link_with_qr(number, data.validated_data["qr"])
        except phone.SandboxPhoneError as error:
            raise ValidationFailed(str(error)) from None
        return ok({"jid": device.jid, "phone_number": f"+{device.phone}"})


class SandboxPhoneUnlinkView(SandboxView):
    @extend_schema(
        operation_id="sandbox_phone_unlink",
        tags=["sandbox"],
        summary="Sandbox only: remove the phone's linked devices (the session turns logged_out)",
        request=s.SandboxUnlinkSerializer,
        responses={
            200: s.SandboxUnlinkResponseSerializer,
            **errors(INPUT, *AUTH_ERRORS, "COMPANY_NOT_FOUND"),
        },
    )
    def post(self, request: Request) -> Response:
        from whatsapp.sandbox import phone

        data = s.SandboxUnlinkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            jids = phone.unlink(data.validated_data["phone_number"])
        except phone.SandboxPhoneError as error:
            raise ValidationFailed(str(error)) from None
        return ok({"unlinked": jids})
