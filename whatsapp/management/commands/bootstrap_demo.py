"""`manage.py bootstrap_demo`: the admin login and a demo company for a first run (`make run`)."""

from __future__ import annotations

import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from whatsapp.models import Company
from whatsapp.services.actors import CLI
from whatsapp.services.links import pairing_link_create
from whatsapp.services.state import session_get


class Command(BaseCommand):
    help = "Create the demo company and an admin user if missing, and print how to log in."

    def handle(self, *args, **options):
        username = os.environ.get("DEMO_ADMIN_USER", "admin")
        password = os.environ.get("DEMO_ADMIN_PASSWORD", "admin")
        users = get_user_model().objects
        if not users.filter(username=username).exists():
            users.create_superuser(username=username, email="", password=password)
            shown = password
        else:
            shown = "(unchanged; DEMO_ADMIN_PASSWORD is only used when the user is created)"
        company, _ = Company.objects.get_or_create(slug="demo", defaults={"name": "Demo Salon"})
        session_get(company)
        link = pairing_link_create(company=company, actor=CLI)
        self.stdout.write(
            "\n"
            f"  Admin:         {settings.PUBLIC_BASE_URL}/admin/  user {username!r} password {shown!r}\n"
            f"  Demo company:  {company.slug} ({company.name})\n"
            f"  Pairing link:  {link.url}\n"
            f"  Backend:       {settings.WHATSAPP_BACKEND}\n"
        )
