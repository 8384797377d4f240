"""Commands from the web side to the worker that runs a company, and their replies.

- In-process mode (embedded default) the worker lives in this process: commands are coroutines
  handed to its loop.
- External mode (`manage.py whatsapp_worker` processes): commands travel over the channel layer
  to the owning worker's channel (or to the shared channel, where any worker claims the company
  first); the reply comes back on a Redis list the caller blocks on, which is safe from any
  thread or event loop.

Every request is bounded: no answer in time -> OperationTimeout.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import time
import uuid
from datetime import timedelta
from typing import Any, Protocol

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

from whatsapp.errors import (
    InternalError,
    OperationTimeout,
    ServiceError,
    WorkerUnavailable,
    error_from_code,
)

logger = logging.getLogger(__name__)

COMMANDS_CHANNEL = "whatsapp.commands"
COMMAND_MESSAGE_TYPE = "whatsapp.command"


def worker_channel(worker_id: str) -> str:
    return f"whatsapp.worker.{worker_id}"


def reply_key(request_id: str) -> str:
    return f"{settings.CHANNEL_LAYERS['default'].get('CONFIG', {}).get('prefix', 'pairing')}:reply:{request_id}"


class CommandBus(Protocol):
    def request(
        self, *, company_id: int, op: str, args: dict[str, Any], timeout: float
    ) -> dict: ...


def live_workers():
    from whatsapp.models import Worker

    since = timezone.now() - timedelta(seconds=settings.WHATSAPP_LEASE_TTL)
    return Worker.objects.filter(heartbeat_at__gte=since, stopped_at__isnull=True)


class LocalBus:
    """Hands commands to the worker running inside this process."""

    def __init__(self) -> None:
        self.worker = None

    def attach(self, worker) -> None:
        self.worker = worker

    def detach(self, worker) -> None:
        if self.worker is worker:
            self.worker = None

    def request(self, *, company_id: int, op: str, args: dict[str, Any], timeout: float) -> dict:
        worker = self.worker
        if worker is None or not worker.accepting:
            raise WorkerUnavailable("The WhatsApp worker is not running in this process.")
        if threading.get_ident() == worker.thread_id:
            raise RuntimeError("a blocking command was sent from the worker's own loop")
        deadline_at = time.time() + timeout
        future = asyncio.run_coroutine_threadsafe(
            worker.execute(company_id=company_id, op=op, args=args, deadline_at=deadline_at),
            worker.loop,
        )
        try:
            return future.result(timeout=timeout + 0.5)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise OperationTimeout() from None
        except ServiceError:
            raise
        except Exception as error:
            # Same as a worker process would answer: the caller gets INTERNAL_ERROR, and the
            # service can record the failed attempt instead of leaving it open.
            logger.exception("worker command %s for company %s failed", op, company_id)
            raise InternalError(f"worker error: {type(error).__name__}") from error


class ChannelBus:
    """Sends commands over the channel layer; replies come back through Redis."""

    def __init__(self) -> None:
        import redis

        self.redis = redis.Redis.from_url(settings.REDIS_URL)

    def request(self, *, company_id: int, op: str, args: dict[str, Any], timeout: float) -> dict:
        from whatsapp.models import WhatsAppSession

        workers = {w.worker_id: w.channel_name for w in live_workers()}
        if not workers:
            raise WorkerUnavailable(
                "No WhatsApp worker is running. Start `manage.py whatsapp_worker`."
            )
        owner = (
            WhatsAppSession.objects.filter(
                company_id=company_id, lease_expires_at__gt=timezone.now()
            )
            .values_list("owner", flat=True)
            .first()
        )
        target = workers.get(owner or "") or COMMANDS_CHANNEL
        request_id = uuid.uuid4().hex
        message = {
            "type": COMMAND_MESSAGE_TYPE,
            "request_id": request_id,
            "company_id": company_id,
            "op": op,
            "args": args,
            "deadline_at": time.time() + timeout,
            "hops": 0,
        }
        async_to_sync(get_channel_layer().send)(target, message)
        answer = self.redis.blpop([reply_key(request_id)], timeout=max(timeout, 0.1))
        if answer is None:
            raise OperationTimeout()
        return decode_reply(answer[1])


def encode_reply(*, result: dict | None = None, error: ServiceError | None = None) -> str:
    if error is not None:
        return json.dumps(
            {
                "ok": False,
                "error": {
                    "code": error.code,
                    "message": error.message,
                    "details": error.details,
                    "retry_after": error.retry_after,
                },
            }
        )
    return json.dumps({"ok": True, "result": result or {}})


def decode_reply(raw: bytes | str) -> dict:
    reply = json.loads(raw)
    if reply.get("ok"):
        return reply.get("result") or {}
    error = reply.get("error") or {}
    raise error_from_code(
        error.get("code", "INTERNAL_ERROR"),
        error.get("message"),
        details=error.get("details"),
        retry_after=error.get("retry_after"),
    )


_local_bus = LocalBus()
_channel_bus: ChannelBus | None = None


def local_bus() -> LocalBus:
    return _local_bus


def get_bus() -> CommandBus:
    global _channel_bus
    if settings.WHATSAPP_WORKER_MODE == "inprocess":
        return _local_bus
    if _channel_bus is None:
        _channel_bus = ChannelBus()
    return _channel_bus
