"""`manage.py check_health`: the service's health from a terminal or a probe.

Prints the database, the channel layer and the live workers with how many sessions each owns;
exits 1 when something is unhealthy (the same checks as `GET /api/v1/health/`).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from whatsapp.selectors import service_health, worker_leases


class Command(BaseCommand):
    help = (
        "Check the database, the channel layer and the live WhatsApp workers; exit 1 if unhealthy."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        health = service_health()
        for name, check in health.checks.items():
            state = "ok" if check["ok"] else f"FAILING ({check.get('error', 'unhealthy')})"
            self.stdout.write(f"{name:<14} {state}")
        try:
            leases = worker_leases()
        except Exception as error:  # the database check above already says why
            leases = {}
            self.stdout.write(f"{'leases':<14} unknown ({type(error).__name__})")
        for worker_id, count in leases.items():
            self.stdout.write(f"  worker {worker_id}: {count} sessions")
        if health.error is not None:
            raise CommandError(health.error.message)
        self.stdout.write(self.style.SUCCESS("healthy"))
