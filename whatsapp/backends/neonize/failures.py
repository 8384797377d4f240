"""Turn neonize's error strings into our error codes (docs/design.md, "Errors").

neonize reports failures as exception messages that carry whatsmeow's own text; the texts below
are the ones listed in docs/whatsapp.md. Matching is by substring and case-insensitive, most
specific first, because whatsmeow wraps errors ("info query returned status 429: ...").
"""

from __future__ import annotations

from whatsapp.errors import (
    ConnectionClosed,
    InternalError,
    InvalidPhone,
    OperationTimeout,
    RateLimited,
    ServiceError,
    WhatsAppUnavailable,
)

# Substrings that mean "WhatsApp cannot be reached from here": dial, DNS and TLS failures.
_UNREACHABLE_MARKERS = (
    "failed to dial",
    "no such host",
    "lookup ",
    "connection refused",
    "network is unreachable",
    "i/o timeout",
    "tls handshake",
    "connection reset",
    "websocket dial",
)

_PAIR_PHONE_RULES: tuple[tuple[tuple[str, ...], type[ServiceError], str], ...] = (
    (
        ("phone number too short",),
        InvalidPhone,
        "WhatsApp rejected the phone number: it is too short.",
    ),
    (
        ("international phone number required",),
        InvalidPhone,
        "WhatsApp needs the number in international format (with the country code).",
    ),
    (("bad-request",), InvalidPhone, "WhatsApp rejected the pairing request for this number."),
    (
        ("429", "rate-overlimit"),
        RateLimited,
        "WhatsApp rate-limited pairing codes for this number.",
    ),
    (
        ("websocket not connected", "client is nil"),
        ConnectionClosed,
        "The WhatsApp connection is not open; start linking again.",
    ),
    (("timed out",), OperationTimeout, "WhatsApp did not answer the pairing request in time."),
)


NOT_ON_WHATSAPP_MARKERS = ("404", "item-not-found", "not-registered")
NOT_ON_WHATSAPP_TEXT = "This number is not on WhatsApp. Check the number, or use the QR code."


def not_on_whatsapp(whatsapp_error: str = "") -> InvalidPhone:
    """WhatsApp's own "no such account" answer (docs/design.md, "Phone numbers")."""
    details = {"reason": "not_on_whatsapp"}
    if whatsapp_error:
        details["whatsapp_error"] = whatsapp_error
    return InvalidPhone(NOT_ON_WHATSAPP_TEXT, details=details)


def pair_phone_error(message: str) -> ServiceError:
    """The error to raise for a `PairPhoneError` with this message."""
    lowered = message.lower()
    if any(marker in lowered for marker in NOT_ON_WHATSAPP_MARKERS):
        return not_on_whatsapp(message)
    for markers, error_class, text in _PAIR_PHONE_RULES:
        if any(marker in lowered for marker in markers):
            return error_class(text, details={"whatsapp_error": message})
    if is_unreachable(message):
        return WhatsAppUnavailable(details={"whatsapp_error": message})
    return InternalError(f"WhatsApp pairing failed: {message}")


def is_unreachable(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in _UNREACHABLE_MARKERS)


def connect_error_code(message: str) -> str:
    """Our error code for a failed `connect()`.

    Anything that is not clearly our own store failing is treated as "WhatsApp unavailable", so
    the runner retries it with backoff instead of giving up on the session.
    """
    lowered = message.lower()
    if is_unreachable(message):
        return WhatsAppUnavailable.code
    if "database" in lowered or "sql" in lowered:
        return InternalError.code
    return WhatsAppUnavailable.code
