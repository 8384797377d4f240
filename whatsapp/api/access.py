"""Which companies a caller may see. Company-scoped callers get COMPANY_NOT_FOUND for any other
company, exactly as for one that does not exist: existence never leaks."""

from __future__ import annotations

from django.db.models import QuerySet

from whatsapp.errors import CompanyNotFound
from whatsapp.models import Company


def companies_visible(*, company_id: int | None) -> QuerySet[Company]:
    """Every company for global keys and staff (`company_id` None), else just that one."""
    companies = Company.objects.all()
    if company_id is not None:
        companies = companies.filter(pk=company_id)
    return companies


def company_visible(*, slug: str, company_id: int | None) -> Company:
    company = companies_visible(company_id=company_id).filter(slug=slug).first()
    if company is None:
        raise CompanyNotFound()
    return company
