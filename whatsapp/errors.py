"""Every error the service raises, with its error code (docs/design.md, "Errors") and HTTP status.

Services and backends only raise these. `error_payload` is the one shape every surface renders
them in: the REST body (plus `"success": false`), the socket's `error` message and published
`error` events (plus `"type": "error"`), and the worker's replies to commands.
"""

from __future__ import annotations

import logging
from typing import Any, NotRequired, TypedDict

import sentry_sdk

logger = logging.getLogger(__name__)


class ErrorPayload(TypedDict):
    error_code: str
    error: str
    details: NotRequired[dict[str, Any]]
    retry_after: NotRequired[int]


class ServiceError(Exception):
    code = "INTERNAL_ERROR"
    http_status = 500
    default_message = "Something went wrong on our side."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        self.retry_after = retry_after
        super().__init__(self.message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors travel between worker and web process; keep them picklable with their fields.
        return (_rebuild, (self.code, self.message, self.details, self.retry_after))


class ValidationFailed(ServiceError):
    code = "VALIDATION_ERROR"
    http_status = 400
    default_message = "The request is malformed."


class InvalidPhone(ServiceError):
    code = "INVALID_PHONE"
    http_status = 400
    default_message = "The phone number is not a valid international number."


class NotAuthenticated(ServiceError):
    code = "NOT_AUTHENTICATED"
    http_status = 401
    default_message = "Authentication credentials were not provided or are not valid."


class PermissionDenied(ServiceError):
    code = "PERMISSION_DENIED"
    http_status = 403
    default_message = "You are not allowed to do this."


class CompanyNotFound(ServiceError):
    code = "COMPANY_NOT_FOUND"
    http_status = 404
    default_message = "No such company."


class AlreadyConnected(ServiceError):
    code = "ALREADY_CONNECTED"
    http_status = 409
    default_message = "WhatsApp is already connected with this phone number."


class CredentialsConflict(ServiceError):
    code = "CREDENTIALS_CONFLICT"
    http_status = 409
    default_message = (
        "WhatsApp is connected with another phone number. Pass replace_existing or reset the "
        "credentials first."
    )


class NotPairing(ServiceError):
    code = "NOT_PAIRING"
    http_status = 409
    default_message = "No linking attempt is running. Start one first."


class NoCredentials(ServiceError):
    code = "NO_CREDENTIALS"
    http_status = 409
    default_message = "This company has no linked WhatsApp account to reconnect. Link it first."


class RateLimited(ServiceError):
    code = "RATE_LIMITED"
    http_status = 429
    default_message = "Too many requests. Try again later."


class ConnectionClosed(ServiceError):
    code = "CONNECTION_CLOSED"
    http_status = 502
    default_message = "WhatsApp closed the connection during the request. Try again."


class WhatsAppUnavailable(ServiceError):
    code = "WHATSAPP_UNAVAILABLE"
    http_status = 503
    default_message = "WhatsApp cannot be reached right now."


class WorkerUnavailable(ServiceError):
    code = "WORKER_UNAVAILABLE"
    http_status = 503
    default_message = "No WhatsApp worker can take this session right now."


class OperationTimeout(ServiceError):
    code = "TIMEOUT"
    http_status = 504
    default_message = "WhatsApp did not answer in time."


class InternalError(ServiceError):
    pass


ERRORS_BY_CODE: dict[str, type[ServiceError]] = {
    cls.code: cls
    for cls in (
        ValidationFailed,
        InvalidPhone,
        NotAuthenticated,
        PermissionDenied,
        CompanyNotFound,
        AlreadyConnected,
        CredentialsConflict,
        NotPairing,
        NoCredentials,
        RateLimited,
        ConnectionClosed,
        WhatsAppUnavailable,
        WorkerUnavailable,
        OperationTimeout,
        InternalError,
    )
}

# Reasons carried in WhatsAppSession.last_error_code; they describe a status, not a failed request.
PAIRING_EXPIRED = "PAIRING_EXPIRED"
LOGGED_OUT = "LOGGED_OUT"
STREAM_REPLACED = "STREAM_REPLACED"
TEMPORARILY_BANNED = "TEMPORARILY_BANNED"
CLIENT_OUTDATED = "CLIENT_OUTDATED"
CONNECT_FAILURE = "CONNECT_FAILURE"
ACCOUNT_LOCKED = "ACCOUNT_LOCKED"  # WhatsApp's 403
ACCOUNT_BANNED = "ACCOUNT_BANNED"  # WhatsApp's 406
PASSKEY_REQUIRED = "PASSKEY_REQUIRED"
STATUS_REASONS = (
    PAIRING_EXPIRED,
    LOGGED_OUT,
    STREAM_REPLACED,
    TEMPORARILY_BANNED,
    CLIENT_OUTDATED,
    CONNECT_FAILURE,
    ACCOUNT_LOCKED,
    ACCOUNT_BANNED,
    PASSKEY_REQUIRED,
)


def error_from_code(
    code: str,
    message: str | None = None,
    *,
    details: dict[str, Any] | None = None,
    retry_after: int | None = None,
) -> ServiceError:
    cls = ERRORS_BY_CODE.get(code, InternalError)
    return cls(message, details=details, retry_after=retry_after)


def error_payload(error: ServiceError) -> ErrorPayload:
    """The fields of an error, the same on every surface (docs/design.md, "Errors")."""
    payload = ErrorPayload(error_code=error.code, error=error.message)
    if error.details:
        payload["details"] = error.details
    if error.retry_after is not None:
        payload["retry_after"] = int(error.retry_after)
    return payload


def error_from_payload(payload: Any) -> ServiceError:
    """The inverse of `error_payload`, for payloads that crossed a process boundary."""
    if not isinstance(payload, dict):
        return InternalError("The worker sent an unreadable error.")
    retry_after = payload.get("retry_after")
    return error_from_code(
        str(payload.get("error_code") or InternalError.code),
        payload.get("error"),
        details=payload.get("details") or None,
        retry_after=int(retry_after) if isinstance(retry_after, int | float) else None,
    )


def report_unexpected(exc: BaseException, *, where: str) -> None:
    """An exception that is not a ServiceError: to Sentry (phones scrubbed) and the log."""
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("where", where)
        sentry_sdk.capture_exception(exc)
    logger.error("unexpected error in %s: %s", where, type(exc).__name__, exc_info=exc)


def _rebuild(code: str, message: str, details: dict, retry_after: int | None) -> ServiceError:
    return error_from_code(code, message, details=details, retry_after=retry_after)
