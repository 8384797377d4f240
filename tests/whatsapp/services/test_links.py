"""Signed pairing links: expiring, revocable, audited (docs/design.md, "Security")."""

from __future__ import annotations

import pytest
from django.core import signing

from whatsapp.errors import PermissionDenied, ValidationFailed
from whatsapp.models import AuditAction, AuditEvent
from whatsapp.services.actors import Actor
from whatsapp.services.links import (
    LinkInvalid,
    pairing_link_create,
    pairing_link_resolve,
    pairing_links_revoke,
)

pytestmark = pytest.mark.django_db
STAFF = Actor(kind="user", label="user:staff")


def token_of(link) -> str:
    return link.url.rstrip("/").rsplit("/", 1)[-1]


def test_a_link_opens_its_company_only_and_its_creation_is_audited(alice, bob):
    link = pairing_link_create(company=alice, actor=STAFF, expires_in=3600)
    assert pairing_link_resolve(token_of(link)).company == alice
    event = AuditEvent.objects.get(company=alice)
    assert (event.action, event.actor) == (AuditAction.LINK_CREATED, "user:staff")
    assert link.link_id in event.detail
    # A token cannot be moved to another company: the signature covers the company id.
    body, signature = token_of(link).rsplit(":", 1)
    _, link_id, expires = signing.b64_decode(body.encode()).decode().split(":")
    moved = signing.b64_encode(f"{bob.pk}:{link_id}:{expires}".encode()).decode()
    with pytest.raises(LinkInvalid):
        pairing_link_resolve(f"{moved}:{signature}")


def test_revoking_voids_every_earlier_link_and_is_audited(alice):
    old = pairing_link_create(company=alice, actor=STAFF)
    pairing_links_revoke(company=alice, actor=STAFF)
    with pytest.raises(LinkInvalid) as error:
        pairing_link_resolve(token_of(old))
    assert error.value.reason == "revoked"
    alice.refresh_from_db()
    fresh = pairing_link_create(company=alice, actor=STAFF)
    assert pairing_link_resolve(token_of(fresh)).company == alice
    assert AuditEvent.objects.filter(company=alice, action=AuditAction.LINKS_REVOKED).count() == 1


def test_an_expired_link_says_expired(alice, monkeypatch):
    link = pairing_link_create(company=alice, actor=STAFF, expires_in=60)
    import time

    real = time.time()
    monkeypatch.setattr(time, "time", lambda: real + 61)
    with pytest.raises(LinkInvalid) as error:
        pairing_link_resolve(token_of(link))
    assert error.value.reason == "expired"


@pytest.mark.parametrize("expires_in", [0, 59, 30 * 86400 + 1, "soon", True, 1.5])
def test_bad_lifetimes_are_validation_errors(alice, expires_in):
    with pytest.raises(ValidationFailed):
        pairing_link_create(company=alice, actor=STAFF, expires_in=expires_in)


def test_a_pairing_link_cannot_make_or_revoke_links(alice):
    end_user = Actor.for_link(company_id=alice.pk, link_id="x")
    with pytest.raises(PermissionDenied):
        pairing_link_create(company=alice, actor=end_user)
    with pytest.raises(PermissionDenied):
        pairing_links_revoke(company=alice, actor=end_user)


@pytest.mark.parametrize("garbage", ["", "abc", "a:b", "x" * 400, "Zm9vOmJhcjpiYXo:sig"])
def test_garbage_tokens_are_invalid(garbage, db):
    with pytest.raises(LinkInvalid):
        pairing_link_resolve(garbage)
