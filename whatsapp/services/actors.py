"""Who asked for an operation: recorded on every attempt and reset (docs/design.md, "Security")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Actor:
    kind: str  # "user" | "api_key" | "link" | "system" | "cli"
    label: str
    user: Any = None
    api_key: Any = None
    # A pairing link's actor may act on one company only and never reset.
    company_id: int | None = None

    @property
    def may_reset(self) -> bool:
        return self.kind != "link"

    @classmethod
    def for_user(cls, user) -> Actor:
        return cls(kind="user", label=f"user:{user.get_username()}", user=user)

    @classmethod
    def for_api_key(cls, api_key) -> Actor:
        return cls(
            kind="api_key",
            label=f"api_key:{api_key.prefix}",
            api_key=api_key,
            company_id=api_key.company_id,
        )

    @classmethod
    def for_link(cls, *, company_id: int, link_id: str) -> Actor:
        return cls(kind="link", label=f"link:{link_id}", company_id=company_id)


def actor_still_valid(actor: Actor) -> bool:
    """Whether the key or staff user behind `actor` may still act: a key revoked or a user
    disabled after a socket opened loses its power there too. Links are checked by their token."""
    from django.contrib.auth import get_user_model

    from whatsapp.models import ApiKey

    if actor.api_key is not None:
        return ApiKey.objects.filter(pk=actor.api_key.pk, revoked_at__isnull=True).exists()
    if actor.user is not None:
        return (
            get_user_model()
            .objects.filter(pk=actor.user.pk, is_active=True, is_staff=True)
            .exists()
        )
    return actor.kind in ("system", "cli")


SYSTEM = Actor(kind="system", label="system")
CLI = Actor(kind="cli", label="cli")
