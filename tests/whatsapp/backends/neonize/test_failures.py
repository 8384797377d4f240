"""neonize error messages -> our error codes."""

from __future__ import annotations

import pytest

from whatsapp import errors
from whatsapp.backends.neonize import failures


@pytest.mark.parametrize(
    ("message", "error_class"),
    [
        ("phone number too short", errors.InvalidPhone),
        ("international phone number required (must not start with 0)", errors.InvalidPhone),
        ("info query returned status 400: bad-request", errors.InvalidPhone),
        ("info query returned status 429: rate-overlimit", errors.RateLimited),
        ("websocket not connected", errors.ConnectionClosed),
        (
            "client is nil: ensure client is connected before calling PairPhone",
            errors.ConnectionClosed,
        ),
        ("info query timed out", errors.OperationTimeout),
        (
            "failed to dial whatsapp web websocket: lookup web.whatsapp.com: no such host",
            errors.WhatsAppUnavailable,
        ),
        ("something nobody expected", errors.InternalError),
    ],
)
def test_pair_phone_errors_map_to_spec_errors(message: str, error_class: type) -> None:
    error = failures.pair_phone_error(message)

    assert type(error) is error_class


def test_pair_phone_errors_keep_whatsapps_text_in_details() -> None:
    error = failures.pair_phone_error("info query returned status 429: rate-overlimit")

    assert error.details == {"whatsapp_error": "info query returned status 429: rate-overlimit"}


def test_an_offline_dial_failure_is_whatsapp_unavailable() -> None:
    message = (
        "failed to dial whatsapp web websocket: failed to WebSocket dial: failed to send "
        'handshake request: Get "https://web.whatsapp.com/ws/chat": dial tcp: lookup '
        "web.whatsapp.com on 10.0.0.53:53: no such host"
    )

    assert failures.connect_error_code(message) == "WHATSAPP_UNAVAILABLE"


def test_a_store_failure_on_connect_is_an_internal_error() -> None:
    assert failures.connect_error_code("failed to upgrade database: ...") == "INTERNAL_ERROR"


def test_not_on_whatsapp_is_an_invalid_phone_with_its_own_reason() -> None:
    error = failures.pair_phone_error("info query returned status 404: item-not-found")
    assert isinstance(error, errors.InvalidPhone)
    assert error.details["reason"] == "not_on_whatsapp"
    assert "not on WhatsApp" in error.message
