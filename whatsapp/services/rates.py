"""Per-company rate limits (docs/design.md, "Linking rules"), shared by every process through the
Django cache (Redis in production): fixed one-minute windows, one counter per company and kind.
The API's throttle and the sockets both count here."""

from __future__ import annotations

import logging
import math
import time

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

PERIOD = 60
WRITE = "write"
READ = "read"


def limit_for(kind: str) -> int:
    if kind == WRITE:
        return settings.API_THROTTLE_WRITES_PER_MINUTE
    return settings.API_THROTTLE_READS_PER_MINUTE


def rate_hit(*, kind: str, ident: str) -> int | None:
    """Count one request of `kind` for `ident`; None if allowed, else seconds until it will be."""
    now = time.time()
    window = int(now // PERIOD)
    key = f"throttle:{kind}:{ident}:{window}"
    try:
        cache.add(key, 0, timeout=PERIOD + 5)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=PERIOD + 5)
            count = 1
    except Exception:
        # An unreachable cache must not take the API down with it; the limits resume with it.
        logger.exception("rate limit counter unavailable; letting the request through")
        return None
    if count > limit_for(kind):
        return max(1, math.ceil((window + 1) * PERIOD - now))
    return None
