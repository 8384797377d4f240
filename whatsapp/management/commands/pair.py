"""`manage.py pair SLUG [--phone P]`: link a company from a terminal, for operators.

Prints the QR in the terminal (or the pairing code for --phone) and waits until connected.
In the embedded mode it runs its own in-process worker: stop `make run` first, since only one
worker may own a company at a time.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from whatsapp.errors import ServiceError
from whatsapp.models import Company, SessionStatus, WhatsAppSession
from whatsapp.qr import qr_terminal
from whatsapp.services import linking
from whatsapp.services.actors import CLI


class Command(BaseCommand):
    help = "Link a company's WhatsApp from the terminal (QR, or pairing code with --phone)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--phone", help="link by pairing code for this phone number")
        parser.add_argument(
            "--replace", action="store_true", help="replace a live link of another phone"
        )
        parser.add_argument("--wait", type=float, default=180, help="seconds to wait for the link")

    def handle(self, *args, slug: str, phone=None, replace=False, wait=180.0, **options):
        company = Company.objects.filter(slug=slug).first()
        if company is None:
            raise CommandError(f"No company with slug {slug!r}.")
        threaded = None
        if settings.WHATSAPP_WORKER_MODE == "inprocess":
            from whatsapp.worker.inprocess import ThreadedWorker

            threaded = ThreadedWorker()
            threaded.start()
        try:
            self._pair(company, phone, replace, wait)
        finally:
            if threaded is not None:
                threaded.stop()

    def _pair(self, company: Company, phone, replace: bool, wait: float) -> None:
        try:
            if phone:
                code = linking.pairing_code_request(
                    company=company, phone_number=phone, actor=CLI, replace_existing=replace
                )
                self.stdout.write(
                    f"Pairing code for {code.phone_number}: {code.pairing_code}\n"
                    "On the phone: WhatsApp > Settings > Linked devices > Link a "
                    "device > Link with phone number instead."
                )
            else:
                linking.session_start(company=company, actor=CLI)
        except ServiceError as error:
            raise CommandError(f"{error.code}: {error.message}") from None
        shown_qr = ""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            session = WhatsAppSession.objects.get(company=company)
            if session.status == SessionStatus.CONNECTED:
                self.stdout.write(self.style.SUCCESS(f"Connected as {session.linked_phone}"))
                return
            if session.status in (
                SessionStatus.DISCONNECTED,
                SessionStatus.FAILED,
                SessionStatus.LOGGED_OUT,
            ):
                raise CommandError(
                    f"Linking ended: {session.status} {session.last_error_code} "
                    f"{session.last_error_message}"
                )
            if not phone and session.qr_code and session.qr_code != shown_qr:
                shown_qr = session.qr_code
                self.stdout.write(qr_terminal(shown_qr))
                self.stdout.write("Scan with WhatsApp > Settings > Linked devices > Link a device")
            time.sleep(0.3)
        raise CommandError("Timed out waiting for the phone.")
