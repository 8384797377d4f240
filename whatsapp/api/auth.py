"""API authentication: hashed API keys (`Authorization: Bearer <key>` or `Token <key>`) and the
staff browser session (with CSRF on unsafe methods)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from whatsapp.models import ApiKey
from whatsapp.services.actors import Actor

KEYWORDS = ("bearer", "token")
# last_used_at is written at most this often per key: one UPDATE a minute, not one per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class ApiKeyCaller:
    """`request.user` for a request authenticated by an API key (`request.auth` is the key)."""

    api_key: ApiKey
    is_authenticated: bool = True
    is_staff: bool = False
    is_active: bool = True

    @property
    def company_id(self) -> int | None:
        return self.api_key.company_id


def key_from_authorization(header: str | bytes | None) -> str | None:
    """The raw key of `Bearer <key>` / `Token <key>`; None when the header names another scheme.

    Returns "" for a recognised scheme with no usable key, so the caller can refuse it."""
    if not header:
        return None
    if isinstance(header, bytes):
        try:
            header = header.decode("latin-1")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
            return ""
    parts = header.split()
    if not parts or parts[0].lower() not in KEYWORDS:
        return None
    if len(parts) != 2:
        return ""
    return parts[1]


def api_key_find(raw_key: str) -> ApiKey | None:
    """The live key for `raw_key`, touching its last_used_at cheaply."""
    key = ApiKey.find(raw_key)
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or key.last_used_at < now - LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request):
        raw_key = key_from_authorization(authentication.get_authorization_header(request))
        if raw_key is None:
            return None
        key = api_key_find(raw_key) if raw_key else None
        if key is None:
            raise exceptions.AuthenticationFailed("The API key is not valid or has been revoked.")
        return ApiKeyCaller(api_key=key), key

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) when credentials are missing.
        return 'Bearer realm="api"'


class StaffSessionAuthentication(authentication.SessionAuthentication):
    """The Django admin's session, for staff only; CSRF is enforced on unsafe methods."""

    def authenticate(self, request: Request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, _ = result
        if not user.is_staff:
            return None
        return result


def actor_for(request: Request) -> Actor:
    if isinstance(request.auth, ApiKey):
        return Actor.for_api_key(request.auth)
    return Actor.for_user(request.user)


def scoped_company_id(request: Request) -> int | None:
    """The one company a caller is confined to, or None for global keys and staff."""
    if isinstance(request.auth, ApiKey):
        return request.auth.company_id
    return None


class ApiKeySchemeExtension(OpenApiAuthenticationExtension):
    target_class = "whatsapp.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key: `Authorization: Bearer <key>` (`Token <key>` works too). "
            "Issue one with `manage.py issue_api_key --company <slug>`.",
        }


class StaffSessionSchemeExtension(OpenApiAuthenticationExtension):
    target_class = "whatsapp.api.auth.StaffSessionAuthentication"
    name = "StaffSession"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "A staff user's Django admin session; unsafe methods need the "
            "X-CSRFToken header.",
        }
