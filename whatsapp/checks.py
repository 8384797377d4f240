"""Deployment checks (`manage.py check --deploy` and every start)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Warning, register


@register()
def public_base_url_check(app_configs, **kwargs):
    if settings.DEBUG or getattr(settings, "PUBLIC_BASE_URL_SET", True):
        return []
    return [
        Warning(
            "PUBLIC_BASE_URL is not set: pairing links will point at http://127.0.0.1:8000.",
            hint="Set PUBLIC_BASE_URL to the address end users open, e.g. https://pairing.example.com.",
            id="whatsapp.W001",
        )
    ]
