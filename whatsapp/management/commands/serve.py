"""`manage.py serve`: daphne with, in the embedded mode, the WhatsApp worker on its event loop."""

from __future__ import annotations

import asyncio
import logging

from django.conf import settings
from django.core.management.base import BaseCommand

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Serve HTTP and WebSockets (daphne); runs the WhatsApp worker in-process when embedded."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, host: str, port: int, **options):
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server
        from twisted.internet import defer, reactor

        from pairing_site.asgi import application

        if not settings.PUBLIC_BASE_URL_SET:
            # Pairing links must point at where this server really listens.
            shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            settings.PUBLIC_BASE_URL = f"http://{shown_host}:{port}"
        worker = None
        if settings.WHATSAPP_WORKER_MODE == "inprocess":
            from whatsapp.worker.core import WhatsAppWorker

            worker = WhatsAppWorker(inprocess=True)

        def ready() -> None:
            if worker is not None:
                asyncio.get_event_loop().create_task(worker.start())
            self.stdout.write(
                f"Serving on http://{host}:{port}/ "
                f"({settings.WHATSAPP_BACKEND} backend, worker "
                f"{'in-process' if worker else 'external'})"
            )
            self.stdout.flush()

        def before_shutdown():
            if worker is None:
                return None
            return defer.Deferred.fromFuture(asyncio.ensure_future(worker.stop()))

        # zope interface stubs declare methods without `self`, which shifts mypy's arguments.
        reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)  # type: ignore[arg-type]
        Server(
            application,
            endpoints=build_endpoint_description_strings(host=host, port=port),
            ready_callable=ready,
            verbosity=1,
        ).run()
