"""`manage.py whatsapp_worker`: a worker process that owns companies and runs their sessions."""

from __future__ import annotations

import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from whatsapp.worker.core import WhatsAppWorker


class Command(BaseCommand):
    help = "Run a WhatsApp worker: owns companies through leases and keeps their sessions alive."

    def add_arguments(self, parser):
        parser.add_argument(
            "--worker-id", help="Stable id for this worker (default: host-pid-random)"
        )

    def handle(self, *args, **options):
        if "InMemoryChannelLayer" in settings.CHANNEL_LAYERS["default"]["BACKEND"]:
            raise CommandError(
                "whatsapp_worker needs a shared channel layer: set REDIS_URL. With the in-memory "
                "layer a separate worker could not reach the web process; the embedded default "
                "(`make run`) already runs the worker inside the web process."
            )
        if settings.WHATSAPP_WORKER_MODE != "external":
            raise CommandError(
                "WHATSAPP_WORKER_MODE is 'inprocess'; set it to 'external' (the "
                "default with REDIS_URL) so web processes send commands to workers."
            )
        asyncio.run(self._main(options.get("worker_id")))

    async def _main(self, worker_id: str | None) -> None:
        worker = WhatsAppWorker(worker_id=worker_id)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, worker.stopping.set)
        self.stdout.write(
            f"WhatsApp worker {worker.worker_id} starting ({worker.backend.name} backend)"
        )
        self.stdout.flush()
        await worker.run()
