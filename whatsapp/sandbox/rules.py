"""The simulated WhatsApp's rules: timings, magic numbers, code and QR formats.

Shared by the client side (`backend.py`) and the phone side (`phone.py`). Durations are given at
speed 1 (real WhatsApp); the client divides them by its speed factor.

Magic phone numbers, chosen by the last four digits of the number:

    ...0000  not on WhatsApp: pair_phone raises InvalidPhone("This number is not registered on
             WhatsApp")
    ...0429  WhatsApp answers 429 rate-overlimit at once: pair_phone raises RateLimited
             (retry_after 7200 s, scaled)
    ...0075  the info query hangs for 75 s (scaled), then pair_phone raises OperationTimeout
    ...0402  links, then every connect is refused as temporarily banned: TemporaryBan
    ...0405  links, then every connect is refused as outdated: ClientOutdated

Any other number behaves normally. More than five pairing-code requests for one phone within ten
minutes (scaled) get WhatsApp's rate-overlimit too.
"""

from __future__ import annotations

import base64
import re
import secrets
from random import Random

import phonenumbers

NOT_ON_WHATSAPP = "0000"
RATE_OVERLIMIT = "0429"
INFO_QUERY_HANGS = "0075"
BANNED = "0402"
OUTDATED = "0405"

# Seconds at speed 1.
DIAL = 0.2  # opening the websocket before the first QR
FIRST_REF = 60.0
NEXT_REF = 20.0
REF_COUNT = 6
RESTART_AFTER_PAIR = 0.2  # the server's 515 "restart required" after PairSuccess
RECONNECT_AFTER_DROP = 1.0
INFO_QUERY_TIMEOUT = 75.0
CODE_REQUEST_WINDOW = 600.0
CODE_REQUEST_MAX = 5  # the sixth request inside the window gets rate-overlimit
RATE_LIMIT_RETRY_AFTER = 7200.0
BAN_SECONDS = 3600.0
BAN_CODE = 101  # whatsmeow's TempBanSentToTooManyPeople

CODE_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"
QR_PREFIX = "https://wa.me/settings/linked_devices#"
CLIENT_TYPE = "1"

_CODE_RE = re.compile(rf"^[{CODE_ALPHABET}]{{4}}-?[{CODE_ALPHABET}]{{4}}$")
_system_random = secrets.SystemRandom()


def window_seconds() -> float:
    return FIRST_REF + NEXT_REF * (REF_COUNT - 1)


def ref_expires_after(index: int) -> float:
    """Seconds from the first QR until ref `index` expires."""
    return FIRST_REF + NEXT_REF * index


def pairing_code_new(rng: Random = _system_random) -> str:
    raw = "".join(rng.choice(CODE_ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


def pairing_code_normalised(value: str) -> str | None:
    """`abcd efgh`, `ABCDEFGH` or `ABCD-EFGH` -> `ABCD-EFGH`; None if it cannot be a code."""
    compact = re.sub(r"[\s-]", "", value).upper()
    if not _CODE_RE.match(compact):
        return None
    return f"{compact[:4]}-{compact[4:]}"


def qr_new(ref: str, *, noise_public: bytes, identity_public: bytes, adv_secret: bytes) -> str:
    parts = [ref, _b64(noise_public), _b64(identity_public), _b64(adv_secret), CLIENT_TYPE]
    return QR_PREFIX + ",".join(parts)


def qr_ref_new() -> str:
    # Real refs look like "2@" followed by a long base64 blob.
    return "2@" + _b64(secrets.token_bytes(48))


def qr_ref(qr: str) -> str:
    """The ref inside a QR string (with or without the wa.me prefix)."""
    value = qr.strip()
    if value.startswith(QR_PREFIX):
        value = value[len(QR_PREFIX) :]
    return value.split(",", 1)[0]


def phone_digits(phone_number: str) -> str:
    """Any common international form -> digits only; ValueError with the reason if invalid."""
    text = phone_number.strip()
    if not text:
        raise ValueError("the phone number is empty")
    if text.startswith("00"):
        text = "+" + text[2:]
    elif not text.startswith("+"):
        # Bare digits are taken as international (country code first), like WhatsApp does.
        text = "+" + text
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise ValueError(
            f"{phone_number!r} is not an international phone number (e.g. +79001234567)"
        ) from None
    # Possible, not valid: sandbox numbers are fake and need not be assigned ranges.
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError(f"{phone_number!r} is not a possible international phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]


def magic(digits: str) -> str:
    """The magic suffix of a number ("" for an ordinary one)."""
    suffix = digits[-4:]
    return (
        suffix
        if suffix in (NOT_ON_WHATSAPP, RATE_OVERLIMIT, INFO_QUERY_HANGS, BANNED, OUTDATED)
        else ""
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
