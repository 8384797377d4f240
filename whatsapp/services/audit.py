"""Audit rows for company actions that are not pairing attempts (docs/design.md, "Security")."""

from __future__ import annotations

from whatsapp.models import AuditEvent, Company
from whatsapp.services.actors import Actor


def audit_record(
    *, company: Company | int, action: str, actor: Actor, detail: str = ""
) -> AuditEvent:
    company_id = company if isinstance(company, int) else company.pk
    return AuditEvent.objects.create(
        company_id=company_id, action=action, actor=actor.label, detail=detail[:300]
    )
