"""The WhatsApp worker: owns companies through leases and runs their sessions.

Built from small steps (heartbeat, reconcile, claim) that the main loop repeats; each can be
called directly in tests. Ownership is a lease on the session row, claimed with a conditional
UPDATE that changes one row or none, so two workers never run one company (docs/design.md, "Topology and ownership").
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, connections, transaction
from django.db.models import Q
from django.utils import timezone

from whatsapp import events
from whatsapp.backends import create_backend
from whatsapp.backends.base import Backend
from whatsapp.errors import InternalError, OperationTimeout, ServiceError, WorkerUnavailable
from whatsapp.models import SessionStatus, WhatsAppSession, Worker
from whatsapp.selectors import live_workers
from whatsapp.worker import commands, liveness
from whatsapp.worker.commands import CommandArgs, CommandMessage, Op, Result
from whatsapp.worker.runner import SessionRunner

if TYPE_CHECKING:
    import redis.asyncio

logger = logging.getLogger(__name__)

MAX_FORWARD_HOPS = 3
REBALANCE_BATCH = 5


def _lease_ttl() -> timedelta:
    return timedelta(seconds=settings.WHATSAPP_LEASE_TTL)


class WhatsAppWorker:
    def __init__(
        self,
        *,
        backend: Backend | None = None,
        inprocess: bool = False,
        worker_id: str | None = None,
    ) -> None:
        self.backend = backend or create_backend()
        self.inprocess = inprocess
        self.worker_id = (
            worker_id or f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        )
        self.channel = commands.worker_channel(self.worker_id)
        self.runners: dict[int, SessionRunner] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread_id: int | None = None
        self.accepting = False
        self.stopping = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._background: set[asyncio.Task] = set()
        # One thread for all database work: Django connections are per thread, so this keeps
        # exactly one connection per worker and lets shutdown close it.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wa-db")
        self._redis: redis.asyncio.Redis | None = None
        self._served: dict[str, float] = {}  # request id -> its deadline
        # Until when (monotonic clock) the leases confirmed by the last heartbeat hold, less a
        # safety margin: past it this worker stops its clients before anyone else may claim them.
        self._leases_hold_until = 0.0
        # External workers on PostgreSQL hold a lock the web side sees vanish when they die.
        self._liveness: liveness.LivenessLock | None = None

    # --- plumbing ----------------------------------------------------------------------------

    async def db(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        def call() -> Any:
            try:
                return function(*args, **kwargs)
            except (OperationalError, InterfaceError):
                # A connection PostgreSQL cut (a restart, a failover, a terminated backend):
                # once more on a fresh one; a database that is really down raises again.
                connections["default"].close()
            try:
                return function(*args, **kwargs)
            except (OperationalError, InterfaceError):
                connections["default"].close()
                raise

        return await sync_to_async(call, thread_sensitive=False, executor=self._executor)()

    def schedule(self, coroutine: Coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.thread_id = threading.get_ident()
        await self.backend.start()
        if not self.inprocess and liveness.supported():
            self._liveness = liveness.LivenessLock(self.worker_id)
            await asyncio.to_thread(self._liveness.acquire)
        await self.db(self._register)
        if self.inprocess:
            commands.local_bus().attach(self)
            events.set_home_loop(self.loop, self.thread_id)
        else:
            import redis.asyncio

            if not settings.REDIS_URL:
                raise WorkerUnavailable("External workers need REDIS_URL for their replies.")
            self._redis = redis.asyncio.Redis.from_url(settings.REDIS_URL)
            self._tasks.append(self.loop.create_task(self._receive(self.channel)))
        self.accepting = True
        self._tasks.append(self.loop.create_task(self._steps_forever()))
        if not self.inprocess:
            # Alone in its process (the embedded mode), no other worker can claim its sessions.
            ttl = settings.WHATSAPP_LEASE_TTL
            self._leases_hold_until = time.monotonic() + ttl - self._lease_margin()
            self._tasks.append(self.loop.create_task(self._fence_forever()))
        logger.info(
            "WhatsApp worker %s started (%s backend, %s)",
            self.worker_id,
            self.backend.name,
            "in-process" if self.inprocess else "external",
        )

    async def run(self) -> None:
        await self.start()
        try:
            await self.stopping.wait()
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Stop every client (credentials stay) and hand the companies back for others."""
        if not self.accepting and not self._tasks:
            return
        self.accepting = False
        self.stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        runners = list(self.runners.values())
        self.runners.clear()
        await asyncio.gather(*(runner.close() for runner in runners), return_exceptions=True)
        try:
            offline = await self.db(self._unregister)
            for session in offline:
                await events.apublish(session.company_id, [events.status_event(session)])
        except Exception:
            logger.exception("could not release the leases of %s", self.worker_id)
        await self.backend.shutdown()
        if self.inprocess:
            commands.local_bus().detach(self)
            events.set_home_loop(None)
        if self._redis is not None:
            await self._redis.aclose()
        if self._liveness is not None:
            await asyncio.to_thread(self._liveness.close)
        await self.db(connections.close_all)
        self._executor.shutdown(wait=False)
        logger.info("WhatsApp worker %s stopped", self.worker_id)

    def _register(self) -> None:
        Worker.objects.update_or_create(
            worker_id=self.worker_id,
            defaults={
                "channel_name": "" if self.inprocess else self.channel,
                "hostname": socket.gethostname()[:200],
                "pid": os.getpid(),
                "started_at": timezone.now(),
                "heartbeat_at": timezone.now(),
                "stopped_at": None,
            },
        )

    def _unregister(self) -> list[WhatsAppSession]:
        """Release our leases; linked sessions say `reconnecting` until a worker resumes them,
        since nothing keeps them online in between."""
        ours = WhatsAppSession.objects.filter(owner=self.worker_id)
        online = list(
            ours.filter(status__in=[SessionStatus.CONNECTED, SessionStatus.AUTHENTICATED])
        )
        ours.filter(pk__in=[s.pk for s in online]).update(
            status=SessionStatus.RECONNECTING, status_changed_at=timezone.now()
        )
        ours.update(owner="", lease_expires_at=None, lease_acquired_at=None)
        Worker.objects.filter(worker_id=self.worker_id).update(stopped_at=timezone.now())
        for session in online:
            session.status = SessionStatus.RECONNECTING
        return online

    # --- steps -------------------------------------------------------------------------------

    async def _steps_forever(self) -> None:
        while not self.stopping.is_set():
            try:
                await self.step_heartbeat()
                await self.step_reconcile()
                await self.step_claim()
                await self.step_rebalance()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("worker step failed; retrying on the next pass")
            try:
                await asyncio.wait_for(self.stopping.wait(), settings.WHATSAPP_HEARTBEAT_INTERVAL)
            except TimeoutError:
                pass

    def _lease_margin(self) -> float:
        ttl = settings.WHATSAPP_LEASE_TTL
        return min(max(0.2 * ttl, settings.WHATSAPP_HEARTBEAT_INTERVAL), 0.5 * ttl)

    async def _fence_forever(self) -> None:
        """By this worker's own clock: once its leases may have run out (a stall, a database it
        cannot reach), stop every client before another worker can claim the sessions."""
        tick = min(0.25, settings.WHATSAPP_HEARTBEAT_INTERVAL / 2)
        while not self.stopping.is_set():
            await asyncio.sleep(tick)
            if self.runners and time.monotonic() > self._leases_hold_until:
                await self.fence(f"leases unconfirmed for more than {self._lease_margin():g} s")

    async def fence(self, why: str) -> None:
        runners = list(self.runners.values())
        logger.warning("worker %s: %s; stopping its %d sessions", self.worker_id, why, len(runners))
        for runner in runners:
            runner.lost = True  # nothing more from them: no writes, events or deletes
        self.runners.clear()
        await asyncio.gather(*(runner.close() for runner in runners), return_exceptions=True)

    async def step_heartbeat(self) -> None:
        """Prove we are alive and renew our leases; drop sessions whose lease we lost."""
        if self._liveness is not None:
            await asyncio.to_thread(self._liveness.check)
        started = time.monotonic()
        kept = await self.db(self._heartbeat)
        self._leases_hold_until = started + settings.WHATSAPP_LEASE_TTL - self._lease_margin()
        for company_id in set(self.runners) - kept:
            logger.warning("lease of company %s lost; stopping it here", company_id)
            await self.runner_lost(self.runners[company_id])

    def _heartbeat(self) -> set[int]:
        now = timezone.now()
        Worker.objects.filter(worker_id=self.worker_id).update(heartbeat_at=now)
        # Only leases this worker still runs a session under are renewed: one it stopped (lost,
        # fenced) runs out and goes to whoever claims it next.
        owned = WhatsAppSession.objects.filter(
            owner=self.worker_id, lease_expires_at__gt=now, company_id__in=list(self.runners)
        )
        owned.update(lease_expires_at=now + _lease_ttl())
        return set(
            WhatsAppSession.objects.filter(owner=self.worker_id).values_list(
                "company_id", flat=True
            )
        )

    async def step_reconcile(self) -> None:
        """Stop sessions that should no longer run (a reset or stop that could not reach us)."""
        unwanted = await self.db(
            lambda: set(
                WhatsAppSession.objects.filter(
                    owner=self.worker_id, wants_running=False
                ).values_list("company_id", flat=True)
            )
        )
        for company_id in unwanted:
            runner = self.runners.get(company_id)
            if runner is not None:
                await runner.close()
            await self.runner_finished_by_id(company_id)

    async def step_claim(self) -> int:
        """Take unowned sessions that want to run, up to this worker's fair share."""
        claimed = await self.db(self._claim_batch)
        for session in claimed:
            if session.company_id in self.runners:
                continue  # a command claimed it while the batch query ran
            runner = SessionRunner(self, session)
            self.runners[session.company_id] = runner
            self.schedule(self._resume(runner))
        return len(claimed)

    async def step_rebalance(self) -> int:
        """Hand sessions over when this worker runs more than its fair share and another live
        worker has room (one joined): a few a pass, so a joining worker fills up without a storm
        of reconnects. The credentials stay; the other worker resumes them from the store."""
        if self.inprocess:
            return 0
        excess = await self.db(self._excess)
        if excess <= 0:
            return 0
        handed = 0
        for company_id in list(self.runners)[:excess]:
            runner = self.runners.get(company_id)
            if runner is None or not await self.db(self._idle_linked, runner.session_id):
                continue  # only linked, idle sessions move: never an attempt in progress
            self.runners.pop(company_id, None)
            runner.lost = True  # from here on, the next owner's
            await runner.close()
            await self.db(self._release, runner.session_id)
            handed += 1
        if handed:
            logger.info("worker %s handed %d sessions over to balance", self.worker_id, handed)
        return handed

    def _excess(self) -> int:
        live = live_workers().count()
        if live < 2:
            return 0
        wanting = WhatsAppSession.objects.filter(wants_running=True).count()
        share = math.ceil(wanting / live)
        # Move only when someone is clearly short, at most a few sessions a pass.
        if len(self.runners) <= share + 1:
            return 0
        return min(len(self.runners) - share, REBALANCE_BATCH)

    def _idle_linked(self, session_pk: int) -> bool:
        return WhatsAppSession.objects.filter(
            pk=session_pk,
            owner=self.worker_id,
            status=SessionStatus.CONNECTED,
            lock_token="",
        ).exists()

    def _release(self, session_pk: int) -> None:
        WhatsAppSession.objects.filter(pk=session_pk, owner=self.worker_id).update(
            owner="",
            lease_expires_at=None,
            lease_acquired_at=None,
            status=SessionStatus.RECONNECTING,
            status_changed_at=timezone.now(),
        )

    async def _resume(self, runner: SessionRunner) -> None:
        try:
            await runner.resume()
        except Exception:
            logger.exception("company %s: could not resume", runner.company_id)

    def _dead_owners(self) -> list[str]:
        """Owners of sessions that no longer live: their leases may still run, but nothing
        runs their sessions (a killed worker's liveness lock is gone at once)."""
        if self.inprocess or not liveness.supported():
            return []
        owners = set(
            WhatsAppSession.objects.exclude(owner="").values_list("owner", flat=True).distinct()
        )
        return sorted(owners - liveness.live_worker_ids(owners) - {self.worker_id})

    def _claim_batch(self) -> list[WhatsAppSession]:
        now = timezone.now()
        dead = self._dead_owners()  # once a pass, not once a row
        free = (
            Q(owner="")
            | Q(lease_expires_at__lt=now)
            | Q(lease_expires_at__isnull=True)
            | Q(owner__in=dead)
        )
        wanting = WhatsAppSession.objects.filter(wants_running=True)
        live = max(1, live_workers().count())
        share = math.ceil(wanting.count() / live)
        room = min(share, settings.WHATSAPP_MAX_SESSIONS_PER_WORKER) - len(self.runners)
        if room <= 0:
            return []
        claimed = []
        # A session whose company lock is held is being commanded right now: the command claims
        # it, and resuming it here too would open a second login window under the first.
        unlocked = Q(lock_token="") | Q(lock_expires_at__lt=now)
        candidates = (
            wanting.filter(free)
            .filter(unlocked)
            .exclude(company_id__in=list(self.runners))
            .order_by("?")  # shuffled: workers claiming at once rarely want the same rows
        )
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # Rows another worker is claiming right now are skipped, not waited for.
                candidates = candidates.select_for_update(skip_locked=True)
            picked = list(candidates.values_list("pk", flat=True)[:room])
            won = [pk for pk in picked if self._claim(pk, now, dead)]
        for session in WhatsAppSession.objects.filter(pk__in=won).select_related("company"):
            claimed.append(session)
        return claimed

    def _claim(self, session_pk: int, now: datetime, dead_owners: list[str] | None = None) -> bool:
        # `now` may be older than a stall: the lease written must start from the clock of the
        # write itself, or it would be born expired.
        now = max(now, timezone.now())
        free = (
            Q(owner="")
            | Q(owner=self.worker_id)
            | Q(lease_expires_at__lt=now)
            | Q(lease_expires_at__isnull=True)
            | Q(owner__in=self._dead_owners() if dead_owners is None else dead_owners)
        )
        return bool(
            WhatsAppSession.objects.filter(pk=session_pk)
            .filter(free)
            .update(
                owner=self.worker_id, lease_expires_at=now + _lease_ttl(), lease_acquired_at=now
            )
        )

    async def runner_finished(self, runner: SessionRunner) -> None:
        if self.runners.get(runner.company_id) is runner:
            await self.runner_finished_by_id(runner.company_id)
            runner.closed = True
            await runner.close()

    async def runner_finished_by_id(self, company_id: int) -> None:
        self.runners.pop(company_id, None)
        await self.db(
            WhatsAppSession.objects.filter(company_id=company_id, owner=self.worker_id).update,
            owner="",
            lease_expires_at=None,
            lease_acquired_at=None,
        )

    async def runner_lost(self, runner: SessionRunner) -> None:
        if self.runners.get(runner.company_id) is runner:
            self.runners.pop(runner.company_id, None)
        await runner.close()

    # --- commands ----------------------------------------------------------------------------

    async def execute(
        self, *, company_id: int, op: Op, args: CommandArgs, deadline_at: float
    ) -> Result:
        """Run one command for a company, claiming it first if nobody owns it."""
        runner = self.runners.get(company_id)
        if runner is None:
            if op == Op.STOP:
                return Result()
            if op == Op.LOGOUT:
                return Result(unlinked=False)
            session = await self.db(
                WhatsAppSession.objects.select_related("company").get, company_id=company_id
            )
            if not await self.db(self._claim, session.pk, timezone.now()):
                raise WorkerUnavailable("Another worker runs this company; try again in a moment.")
            runner = self.runners.get(company_id) or SessionRunner(self, session)
            self.runners[company_id] = runner
        return await runner.handle(op, args, deadline_at)

    async def _receive(self, channel: str) -> None:
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        while True:
            try:
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("receiving on %s failed; retrying", channel)
                await asyncio.sleep(1)
                continue
            if message.get("type") == commands.COMMAND_MESSAGE_TYPE:
                self.schedule(self._serve(message))

    async def _serve(self, message: CommandMessage) -> None:
        request_id = message["request_id"]
        deadline_at = float(message.get("deadline_at", 0))
        if time.time() >= deadline_at:
            return  # the caller has given up already
        if not self._first_delivery(request_id, deadline_at):
            logger.warning("command %s delivered twice; served once", request_id)
            return
        company_id = int(message["company_id"])
        if company_id not in self.runners and await self._forward(message):
            return
        try:
            result = await self.execute(
                company_id=company_id,
                op=Op(message["op"]),
                args=message.get("args") or CommandArgs(),
                deadline_at=deadline_at,
            )
            payload = commands.encode_reply(result=result)
        except ServiceError as error:
            payload = commands.encode_reply(error=error)
        except TimeoutError:
            payload = commands.encode_reply(error=OperationTimeout())
        except Exception as error:
            logger.exception("command %s for company %s failed", message.get("op"), company_id)
            payload = commands.encode_reply(
                error=InternalError(f"worker error: {type(error).__name__}")
            )
        key = commands.reply_key(request_id)
        assert self._redis is not None, "external workers serve commands with a Redis client"
        await self._redis.rpush(key, payload)  # type: ignore[misc]  # redis-py's sync/async union
        await self._redis.expire(key, 60)

    def _first_delivery(self, request_id: str, deadline_at: float) -> bool:
        """Remember served request ids until their deadline: each runs once in effect."""
        now = time.time()
        for seen, until in list(self._served.items()):
            if until < now:
                del self._served[seen]
        if request_id in self._served:
            return False
        self._served[request_id] = deadline_at
        return True

    async def _forward(self, message: CommandMessage) -> bool:
        """A command for a company another live worker owns goes to that worker."""

        def owner_channel() -> str | None:
            owner = (
                WhatsAppSession.objects.filter(
                    company_id=message["company_id"], lease_expires_at__gt=timezone.now()
                )
                .exclude(owner__in=["", self.worker_id])
                .values_list("owner", flat=True)
                .first()
            )
            if not owner:
                return None
            return (
                live_workers()
                .filter(worker_id=owner)
                .values_list("channel_name", flat=True)
                .first()
            )

        channel = await self.db(owner_channel)
        if not channel or message.get("hops", 0) >= MAX_FORWARD_HOPS:
            return False
        from channels.layers import get_channel_layer

        await get_channel_layer().send(channel, {**message, "hops": message.get("hops", 0) + 1})
        return True
