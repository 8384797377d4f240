"""Signed pairing links for end users (docs/design.md, "Events", "Pages", "Security").

A link carries the company id, a random link id and its expiry, signed with SECRET_KEY and
salted with the company's link secret: rotating that secret voids every earlier link.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core import signing
from django.urls import reverse

from whatsapp.errors import PermissionDenied, ValidationFailed
from whatsapp.models import AuditAction, Company
from whatsapp.services.actors import Actor
from whatsapp.services.audit import audit_record

SALT = "whatsapp.pairing-link"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairingLink:
    token: str
    url: str
    company: Company
    link_id: str
    expires_at: datetime


class LinkInvalid(Exception):
    """The token is malformed, tampered with, expired or revoked."""

    def __init__(self, reason: str) -> None:
        self.reason = reason  # "invalid" | "expired" | "revoked"
        super().__init__(reason)


def _signer(company: Company) -> signing.Signer:
    return signing.Signer(salt=f"{SALT}:{company.link_secret}")


def pairing_link_create(
    *, company: Company, actor: Actor, expires_in: int | None = None
) -> PairingLink:
    if not actor.may_reset:
        raise PermissionDenied("A pairing link cannot create other links.")
    lifetime = settings.PAIRING_LINK_TTL if expires_in is None else expires_in
    if (
        not isinstance(lifetime, int)
        or isinstance(lifetime, bool)
        or not 60 <= lifetime <= 30 * 86400
    ):
        raise ValidationFailed(
            "expires_in must be a whole number of seconds from 60 to 2592000.",
            details={"expires_in": ["Must be between 60 and 2592000."]},
        )
    expires = int(time.time()) + lifetime
    link_id = secrets.token_urlsafe(6)
    body = signing.b64_encode(f"{company.pk}:{link_id}:{expires}".encode()).decode()
    token = _signer(company).sign(body)
    path = reverse("pair-page", kwargs={"link_token": token})
    audit_record(
        company=company,
        action=AuditAction.LINK_CREATED,
        actor=actor,
        detail=f"link {link_id}, valid {lifetime} s",
    )
    logger.info("pairing link %s for company %s created by %s", link_id, company.pk, actor.label)

    return PairingLink(
        token=token,
        url=f"{settings.PUBLIC_BASE_URL}{path}",
        company=company,
        link_id=link_id,
        expires_at=datetime.fromtimestamp(expires, tz=UTC),
    )


def pairing_links_revoke(*, company: Company, actor: Actor) -> None:
    """Void every pairing link of the company issued so far (new ones work again)."""
    if not actor.may_reset:
        raise PermissionDenied("A pairing link cannot revoke links.")
    company.rotate_link_secret()
    audit_record(company=company, action=AuditAction.LINKS_REVOKED, actor=actor)
    logger.info("pairing links of company %s revoked by %s", company.pk, actor.label)


def pairing_link_resolve(token: str) -> PairingLink:
    """Return the link for `token`, or raise LinkInvalid saying why."""
    if not isinstance(token, str) or len(token) > 300 or ":" not in token:
        raise LinkInvalid("invalid")
    body = token.rsplit(":", 1)[0]
    try:
        company_id, link_id, expires = signing.b64_decode(body.encode()).decode().split(":")
        company = Company.objects.get(pk=int(company_id))
    except (ValueError, UnicodeDecodeError, Company.DoesNotExist):
        raise LinkInvalid("invalid") from None
    try:
        _signer(company).unsign(token)
    except signing.BadSignature:
        # Well-formed and for a real company, but not signed with its current secret: revoked
        # (or forged, which we cannot tell apart and treat the same).
        raise LinkInvalid("revoked") from None
    if int(expires) < time.time():
        raise LinkInvalid("expired")
    return PairingLink(
        token=token,
        url="",
        company=company,
        link_id=link_id,
        expires_at=datetime.fromtimestamp(int(expires), tz=UTC),
    )
