"""REST API v1 (docs/design.md, "REST API"): thin views over the services and selectors.

Each view validates input, calls one service or selector, and returns `{"success": true, ...}`
with the data fields flat. Errors are raised and rendered by `exceptions.api_exception_handler`.
"""

from __future__ import annotations

import logging
from typing import Any

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
from whatsapp.api.auth import actor_for, scoped_company_id
from whatsapp.api.exceptions import error_body
from whatsapp.errors import NotPairing
from whatsapp.models import SLUG_VALIDATOR, ApiKey, Company, PairingAttempt
from whatsapp.rest import (
    AUTH_ERRORS,
    COMPANY_ERRORS,
    INPUT,
    error_responses,
    ok,
)
from whatsapp.services import linking
from whatsapp.services.companies import company_create
from whatsapp.services.links import pairing_link_create
from whatsapp.services.state import session_get

logger = logging.getLogger(__name__)

SLUG_PATTERN = str(getattr(SLUG_VALIDATOR.regex, "pattern", SLUG_VALIDATOR.regex))

SLUG_PARAMETER = OpenApiParameter(
    "slug",
    str,
    OpenApiParameter.PATH,
    pattern=SLUG_PATTERN,
    description="The company's slug (its public id)",
)


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


# What a linking call that reaches WhatsApp (through the worker) can fail with.
WORKER_ERRORS = ("CONNECTION_CLOSED", "WHATSAPP_UNAVAILABLE", "WORKER_UNAVAILABLE", "TIMEOUT")


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
        self.company = selectors.company_visible(
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
        responses={200: s.CompanyListResponseSerializer, **error_responses(INPUT, *AUTH_ERRORS)},
    )
    def get(self, request: Request) -> Response:
        companies = (
            selectors.companies_visible(company_id=scoped_company_id(request))
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
            **error_responses(INPUT, *AUTH_ERRORS, "PERMISSION_DENIED"),
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
        responses={200: s.CompanyResponseSerializer, **error_responses(*COMPANY_ERRORS)},
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
        responses={200: s.SessionResponseSerializer, **error_responses(*COMPANY_ERRORS)},
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
        responses={
            202: s.SessionResponseSerializer,
            **error_responses(*COMPANY_ERRORS, *WORKER_ERRORS),
        },
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
        responses={200: s.QrResponseSerializer, **error_responses(*COMPANY_ERRORS, "NOT_PAIRING")},
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
            **error_responses(
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
            **error_responses(*COMPANY_ERRORS, "NO_CREDENTIALS", *WORKER_ERRORS),
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
        responses={200: s.LogoutResponseSerializer, **error_responses(*COMPANY_ERRORS, "TIMEOUT")},
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
        responses={200: s.SessionHealthResponseSerializer, **error_responses(*COMPANY_ERRORS)},
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
        responses={200: s.CredentialsResponseSerializer, **error_responses(*COMPANY_ERRORS)},
    )
    def get(self, request: Request, slug: str) -> Response:
        return ok(selectors.credentials_status(self.company))

    @extend_schema(
        operation_id="credentials_reset",
        tags=["credentials"],
        summary="Reset: stop the session, delete the credentials, notify subscribers",
        parameters=[SLUG_PARAMETER],
        responses={
            200: s.CredentialsResetResponseSerializer,
            **error_responses(*COMPANY_ERRORS, "TIMEOUT"),
        },
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
        responses={200: s.AttemptListResponseSerializer, **error_responses(INPUT, *COMPANY_ERRORS)},
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
        responses={201: s.PairingLinkResponseSerializer, **error_responses(INPUT, *COMPANY_ERRORS)},
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
        health = selectors.service_health()
        if health.error is None:
            return ok({"status": "ok", "checks": health.checks})
        return Response(
            {**error_body(health.error), "status": "unhealthy", "checks": health.checks},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
