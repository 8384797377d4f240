"""API keys as credentials: reading one from an Authorization header, and finding the live key
for it (hashed at rest; docs/design.md, "Security"). Used by the API and the sockets alike."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from whatsapp.models import ApiKey

KEYWORDS = ("bearer", "token")
# last_used_at is written at most this often per key: one UPDATE a minute, not one per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


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
