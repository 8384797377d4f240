"""Commands from the web side to the worker that runs a company, and their replies: the wire
protocol between them, typed, next to the worker that serves it (docs/design.md, "Topology and
ownership").

- In-process mode (embedded default) the worker lives in this process: commands are coroutines
  handed to its loop.
- External mode (`manage.py whatsapp_worker` processes): a `CommandMessage` travels over the
  channel layer to one worker's own channel, which only that worker reads: the owner's, or for a
  company nobody runs, the live worker with the fewest sessions (it claims the company before
  acting). No channel is read by several workers, so a command is never delivered twice; a worker
  also ignores a request id it has already served. The `Reply` comes back on a Redis list the
  caller blocks on, which is safe from any thread or event loop.

Every request is bounded: no answer in time -> OperationTimeout.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, NotRequired, Protocol, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

from whatsapp.errors import (
    ErrorPayload,
    InternalError,
    OperationTimeout,
    ServiceError,
    WorkerUnavailable,
    error_from_payload,
    error_payload,
)
from whatsapp.selectors import live_workers

if TYPE_CHECKING:
    import redis

    from whatsapp.worker.core import WhatsAppWorker

logger = logging.getLogger(__name__)

COMMAND_MESSAGE_TYPE: Literal["whatsapp.command"] = "whatsapp.command"


class Op(StrEnum):
    START = "start"
    PAIRING_CODE = "pairing_code"
    RECONNECT = "reconnect"
    LOGOUT = "logout"
    STOP = "stop"


class CommandArgs(TypedDict, total=False):
    attempt_id: int  # start, pairing_code
    phone: str  # pairing_code: E.164
    phone_digits: str  # pairing_code: what WhatsApp is sent


class Result(TypedDict, total=False):
    """What an op answers: `pairing_code` and `expires_at` (ISO) for pairing_code, `unlinked` for
    logout, nothing for the others."""

    pairing_code: str
    expires_at: str
    unlinked: bool


class CommandMessage(TypedDict):
    """A command on the channel layer."""

    type: Literal["whatsapp.command"]
    request_id: str
    company_id: int
    op: str
    args: CommandArgs
    deadline_at: float  # epoch seconds; past it the caller has given up
    hops: int  # forwards between workers so far


class Reply(TypedDict):
    """A worker's answer, pushed as JSON to the caller's reply list."""

    ok: bool
    result: NotRequired[Result]
    error: NotRequired[ErrorPayload]


def command_message(
    *, company_id: int, op: Op, args: CommandArgs, timeout: float
) -> CommandMessage:
    return CommandMessage(
        type="whatsapp.command",
        request_id=uuid.uuid4().hex,
        company_id=company_id,
        op=op.value,
        args=args,
        deadline_at=time.time() + timeout,
        hops=0,
    )


@contextlib.contextmanager
def timed_command(op: Op) -> Iterator[None]:
    """Observe a command's round trip in `pairing_command_seconds` (by op and outcome)."""
    from whatsapp.metrics import COMMAND_SECONDS

    started = time.monotonic()
    outcome = "ok"
    try:
        yield
    except ServiceError as error:
        outcome = error.code
        raise
    except Exception:
        outcome = InternalError.code
        raise
    finally:
        COMMAND_SECONDS.labels(op=op.value, outcome=outcome).observe(time.monotonic() - started)


def placement(worker_ids: list[str]) -> str:
    """The live worker a company nobody runs goes to: the one running the fewest sessions."""
    from django.db.models import Count

    from whatsapp.models import WhatsAppSession

    loads = dict(
        WhatsAppSession.objects.filter(owner__in=worker_ids)
        .values_list("owner")
        .annotate(n=Count("id"))
        .values_list("owner", "n")
    )
    return min(sorted(worker_ids), key=lambda worker_id: loads.get(worker_id, 0))


def worker_channel(worker_id: str) -> str:
    return f"whatsapp.worker.{worker_id}"


def layer_prefix() -> str:
    """The channel layer's key prefix: processes sharing a Redis stay apart by it."""
    layer: dict[str, Any] = dict(settings.CHANNEL_LAYERS["default"])
    return str(layer.get("CONFIG", {}).get("prefix", "pairing"))


def reply_key(request_id: str) -> str:
    return f"{layer_prefix()}:reply:{request_id}"


def encode_reply(*, result: Result | None = None, error: ServiceError | None = None) -> str:
    reply: Reply
    if error is not None:
        reply = Reply(ok=False, error=error_payload(error))
    else:
        reply = Reply(ok=True, result=result or Result())
    return json.dumps(reply)


def decode_reply(raw: bytes | str) -> Result:
    """The result of a reply, or its error raised."""
    try:
        reply = json.loads(raw)
    except ValueError:
        raise InternalError("The worker sent an unreadable reply.") from None
    if not isinstance(reply, dict):
        raise InternalError("The worker sent an unreadable reply.")
    if reply.get("ok"):
        return reply.get("result") or Result()
    raise error_from_payload(reply.get("error"))


class CommandBus(Protocol):
    def request(self, *, company_id: int, op: Op, args: CommandArgs, timeout: float) -> Result: ...


class LocalBus:
    """Hands commands to the worker running inside this process."""

    def __init__(self) -> None:
        self.worker: WhatsAppWorker | None = None

    def attach(self, worker: WhatsAppWorker) -> None:
        self.worker = worker

    def detach(self, worker: WhatsAppWorker) -> None:
        if self.worker is worker:
            self.worker = None

    def request(self, *, company_id: int, op: Op, args: CommandArgs, timeout: float) -> Result:
        worker = self.worker
        if worker is None or worker.loop is None or not worker.accepting:
            raise WorkerUnavailable("The WhatsApp worker is not running in this process.")
        if threading.get_ident() == worker.thread_id:
            raise RuntimeError("a blocking command was sent from the worker's own loop")
        deadline_at = time.time() + timeout
        with timed_command(op):
            return self._run(
                worker,
                company_id=company_id,
                op=op,
                args=args,
                deadline_at=deadline_at,
                timeout=timeout,
            )

    def _run(
        self,
        worker: WhatsAppWorker,
        *,
        company_id: int,
        op: Op,
        args: CommandArgs,
        deadline_at: float,
        timeout: float,
    ) -> Result:
        assert worker.loop is not None
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


# Longest a command may take to reach the channel layer: a frozen Redis must not eat the
# caller's whole bound.
SEND_TIMEOUT = 3.0
REDIS_DOWN = (
    "Redis, which carries commands to the WhatsApp workers, does not answer; try again shortly."
)


class ChannelBus:
    """Sends commands over the channel layer; replies come back through Redis."""

    def __init__(self, redis_url: str) -> None:
        import redis

        # The reply wait (BLPOP) blocks for up to a request's timeout: the socket waits a little
        # longer than the longest one, and never forever.
        self.redis: redis.Redis = redis.Redis.from_url(
            redis_url,
            socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT,
            socket_timeout=settings.WHATSAPP_OPERATION_TIMEOUT + settings.REDIS_SOCKET_TIMEOUT,
        )

    def request(self, *, company_id: int, op: Op, args: CommandArgs, timeout: float) -> Result:
        import redis

        with timed_command(op):
            try:
                return self._request(company_id=company_id, op=op, args=args, timeout=timeout)
            except (redis.RedisError, OSError) as error:
                logger.warning("command %s for company %s: Redis failed: %r", op, company_id, error)
                raise WorkerUnavailable(REDIS_DOWN) from None

    def _request(self, *, company_id: int, op: Op, args: CommandArgs, timeout: float) -> Result:
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
        target = workers.get(owner or "") or workers[placement(list(workers))]
        message = command_message(company_id=company_id, op=op, args=args, timeout=timeout)

        async def send() -> None:
            await asyncio.wait_for(get_channel_layer().send(target, message), SEND_TIMEOUT)

        try:
            async_to_sync(send)()
        except TimeoutError:
            raise WorkerUnavailable(REDIS_DOWN) from None
        answer: Any = self.redis.blpop(
            [reply_key(message["request_id"])], timeout=max(timeout, 0.1)
        )
        if answer is None:
            raise OperationTimeout()
        return decode_reply(answer[1])


_local_bus = LocalBus()
_channel_bus: ChannelBus | None = None


def local_bus() -> LocalBus:
    return _local_bus


def get_bus() -> CommandBus:
    global _channel_bus
    if settings.WHATSAPP_WORKER_MODE == "inprocess":
        return _local_bus
    if _channel_bus is None:
        if not settings.REDIS_URL:
            raise WorkerUnavailable("External workers need REDIS_URL for their replies.")
        _channel_bus = ChannelBus(settings.REDIS_URL)
    return _channel_bus
