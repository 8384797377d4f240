"""API authentication: hashed API keys (`Authorization: Bearer <key>` or `Token <key>`) and the
staff browser session (with CSRF on unsafe methods)."""

from __future__ import annotations

from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from whatsapp.models import ApiKey
from whatsapp.services.actors import Actor
from whatsapp.services.api_keys import api_key_find, key_from_authorization


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
