"""Creating companies (tenants): one place for the API, the admin console and the CLI."""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from whatsapp.errors import ValidationFailed
from whatsapp.models import Company
from whatsapp.services.actors import Actor
from whatsapp.services.state import session_get

logger = logging.getLogger(__name__)

SLUG_TAKEN = "A company with this slug already exists."


def company_create(*, slug: str, name: str, actor: Actor) -> Company:
    """Create a company with its (disconnected) session; ValidationFailed says what is wrong."""
    company = Company(slug=slug, name=name)
    try:
        company.full_clean(validate_unique=False)
    except ValidationError as error:
        raise ValidationFailed("The company is not valid.", details=error.message_dict) from None
    if Company.objects.filter(slug=slug).exists():
        raise ValidationFailed(SLUG_TAKEN, details={"slug": [SLUG_TAKEN]})
    try:
        with transaction.atomic():
            company.save()
            session_get(company)
    except IntegrityError:  # created by someone else between the check and the save
        raise ValidationFailed(SLUG_TAKEN, details={"slug": [SLUG_TAKEN]}) from None
    logger.info("company %s created by %s", company.slug, actor.label)
    return company
