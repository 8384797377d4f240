"""The one renderer of API errors: `{"success": false, "error_code", "error", "details"?}`.

Service errors carry their code and status; DRF's and Django's own exceptions are mapped onto the
codes of docs/design.md ("Errors") here, so no client ever sees another shape. Unexpected exceptions become 500
INTERNAL_ERROR and go to Sentry (phones are scrubbed by `whatsapp.privacy.sentry_before_send`).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf
from rest_framework.response import Response

from whatsapp.errors import (
    CompanyNotFound,
    InternalError,
    NotAuthenticated,
    PermissionDenied,
    RateLimited,
    ServiceError,
    ValidationFailed,
    WorkerUnavailable,
    error_payload,
    report_unexpected,
)


def error_body(error: ServiceError) -> dict[str, Any]:
    """The REST body of an error: `error_payload` plus `"success": false`."""
    return {"success": False, **error_payload(error)}


def _message(detail: Any, fallback: str) -> str:
    if isinstance(detail, str) and detail:
        return str(detail)
    return fallback


def service_error_for(exc: Exception) -> ServiceError | None:
    """Our error for a DRF or Django exception (None for unexpected ones)."""
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, drf.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return ValidationFailed("The request has invalid fields; see details.", details=details)
    if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
        return NotAuthenticated(_message(exc.detail, NotAuthenticated.default_message))
    if isinstance(exc, drf.PermissionDenied | DjangoPermissionDenied):
        detail = getattr(exc, "detail", None)
        return PermissionDenied(_message(detail, PermissionDenied.default_message))
    if isinstance(exc, drf.NotFound | Http404):
        return CompanyNotFound()
    if isinstance(exc, drf.Throttled):
        wait = max(1, int(getattr(exc, "wait", None) or 1))
        return RateLimited(
            f"Too many requests for this company. Try again in {wait} seconds.",
            retry_after=wait,
            details={"retry_after": wait, "reason": "api_rate_limit"},
        )
    if isinstance(exc, OperationalError | InterfaceError):
        # PostgreSQL down or a connection cut: the request may succeed in a moment.
        return WorkerUnavailable("The database is unavailable right now; try again shortly.")
    if _is_redis_error(exc):
        return WorkerUnavailable("Redis is unavailable right now; try again shortly.")
    if isinstance(exc, drf.APIException):
        # ParseError (400), MethodNotAllowed (405), NotAcceptable (406), UnsupportedMediaType
        # (415): all "the request is malformed"; the HTTP status stays DRF's.
        error = ValidationFailed(_message(exc.detail, ValidationFailed.default_message))
        error.http_status = exc.status_code
        return error
    return None


def _is_redis_error(exc: Exception) -> bool:
    try:
        import redis
    except ImportError:  # pragma: no cover - redis is a dependency
        return False
    return isinstance(exc, redis.RedisError)


def error_response_headers(error: ServiceError, exc: Exception | None = None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if error.retry_after:
        headers["Retry-After"] = str(int(error.retry_after))
    auth_header = getattr(exc, "auth_header", None)
    if auth_header and error.http_status == 401:
        headers["WWW-Authenticate"] = auth_header
    return headers


def api_exception_handler(exc: Exception, context: dict) -> Response:
    error = service_error_for(exc)
    if error is None:
        view = context.get("view")
        report_unexpected(exc, where=type(view).__name__ if view else "api")
        error = InternalError()
    return Response(
        error_body(error), status=error.http_status, headers=error_response_headers(error, exc)
    )


@csrf_exempt  # it has no effect, and an unknown POST must get the JSON 404, not the CSRF page
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any unknown URL under /api/v1/: a JSON 404, with a hint for a missing trailing slash."""
    message = "No such endpoint or company."
    if not request.path.endswith("/"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            message = f"No such endpoint. Did you mean {request.path}/ (with a trailing slash)?"
    return JsonResponse(
        error_body(CompanyNotFound(message)),
        status=404,
        json_dumps_params={"separators": (",", ":")},
    )
