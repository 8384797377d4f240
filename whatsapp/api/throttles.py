"""The API's throttle: per-company reads and writes (`whatsapp.services.rates`)."""

from __future__ import annotations

import logging

from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from whatsapp.services.rates import READ, WRITE, rate_hit

logger = logging.getLogger(__name__)


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
