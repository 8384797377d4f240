import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from whatsapp.models import Company, WhatsAppSession
from whatsapp.services.links import pairing_link_resolve


@pytest.mark.django_db
def test_it_creates_the_admin_and_demo_company_once_and_prints_a_working_link():
    out = io.StringIO()
    call_command("bootstrap_demo", stdout=out)
    call_command("bootstrap_demo", stdout=io.StringIO())  # idempotent
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("admin")
    demo = Company.objects.get(slug="demo")
    assert WhatsAppSession.objects.filter(company=demo).exists()
    link = next(line.split()[-1] for line in out.getvalue().splitlines() if "Pairing link" in line)
    assert pairing_link_resolve(link.rstrip("/").rsplit("/", 1)[-1]).company == demo
