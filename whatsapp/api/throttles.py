"""Per-company rate limits (docs/design.md, "Linking rules"), shared by every process through the Django cache
(Redis in production): fixed one-minute windows, one counter per company and kind."""

from __future__ import annotations

import logging
import math
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

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


def request_kind(request: Request) -> str:
    return READ if request.method in SAFE_METHODS else WRITE


class CompanyRateThrottle(BaseThrottle):
    """Reads and writes per company; for views without a company, per caller."""

    def __init__(self) -> None:
        self._wait: int | None = None

    def allow_request(self, request: Request, view) -> bool:
        company = getattr(view, "company", None)
        if company is not None:
            ident = f"company:{company.pk}"
        elif request.auth is not None and hasattr(request.auth, "pk"):
            ident = f"key:{request.auth.pk}"
        elif getattr(request.user, "pk", None) is not None:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        self._wait = rate_hit(kind=request_kind(request), ident=ident)
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait
