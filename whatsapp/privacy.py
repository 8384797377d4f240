"""Keep phone numbers out of logs and error reports (docs/design.md, "Security")."""

from __future__ import annotations

import logging
import re

# 7+ digits, optionally with a leading + and single separators, is treated as a phone number.
# Not inside a word, so ids such as "host-19855-08de9" stay readable.
_PHONE_RE = re.compile(r"(?<![\w+])\+?\d(?:[\s\-().]?\d){6,}(?![\w])")


def mask_phone(phone: str | None) -> str:
    """`+79001234567` -> `+7900***4567`: enough to recognise, not enough to dial."""
    if not phone:
        return ""
    digits = re.sub(r"\D", "", phone)
    if len(digits) <= 6:
        return "*" * len(digits)
    prefix = "+" if phone.strip().startswith("+") or len(digits) > 9 else ""
    return (
        f"{prefix}{digits[:4]}***{digits[-4:]}"
        if len(digits) > 8
        else f"{prefix}{digits[:2]}***{digits[-2:]}"
    )


def mask_phones_in(text: str) -> str:
    return _PHONE_RE.sub(lambda match: mask_phone(match.group(0)), text)


class MaskPhonesFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            return True
        masked = mask_phones_in(message)
        if masked != message:
            record.msg = masked
            record.args = None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when it is set: exception messages get masked too.
            record.exc_text = mask_phones_in(logging.Formatter().formatException(record.exc_info))
        return True


# API keys passed as `?token=` (browsers' WebSockets) must not reach error reports.
_TOKEN_RE = re.compile(r"(?i)(token=)[^&\s\"']+")


def _scrub(value):
    if isinstance(value, str):
        return _TOKEN_RE.sub(r"\1[Filtered]", mask_phones_in(value))
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return value


def sentry_before_send(event, hint):
    return _scrub(event)
