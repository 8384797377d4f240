"""A worker's liveness that the web side sees at once (docs/design.md, "Topology and ownership").

A heartbeat row says a worker was alive a moment ago; it keeps saying so for a whole lease TTL
after the worker died. On PostgreSQL each external worker also holds a session-level advisory
lock on a connection of its own: PostgreSQL releases it the moment that process dies (its socket
closes), so `live_worker_ids` drops a killed worker within the time its TCP connection takes to
close, and commands to it get 503 at once instead of a 20 s timeout.

SQLite (the embedded mode) has one in-process worker and no such lock: heartbeats decide there.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable
from typing import Any

from django.db import connections

logger = logging.getLogger(__name__)

# The first key of the two-key advisory locks; the second is a hash of the worker id.
LOCK_SPACE = zlib.crc32(b"whatsapp-pairing:worker-liveness") & 0x7FFFFFFF


def lock_key(worker_id: str) -> int:
    return zlib.crc32(worker_id.encode()) & 0x7FFFFFFF


def supported() -> bool:
    return connections["default"].vendor == "postgresql"


class LivenessLock:
    """The advisory lock one worker holds while it lives, on a connection of its own."""

    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        self._connection: Any = None

    def acquire(self) -> None:
        """Blocking: open the connection and take the lock (a restarted worker with the same id
        waits here until its dead predecessor's connection is gone)."""
        import psycopg

        settings_dict = connections["default"].settings_dict
        self.close()
        self._connection = psycopg.connect(
            dbname=settings_dict["NAME"],
            user=settings_dict.get("USER") or None,
            password=settings_dict.get("PASSWORD") or None,
            host=settings_dict.get("HOST") or None,
            port=settings_dict.get("PORT") or None,
            application_name="whatsapp-worker-liveness",
            autocommit=True,
            connect_timeout=5,
        )
        self._connection.execute(
            "SELECT pg_advisory_lock(%s, %s)", [LOCK_SPACE, lock_key(self.worker_id)]
        )

    def check(self) -> bool:
        """Blocking: whether the lock is still ours; re-takes it when its connection was lost."""
        try:
            if self._connection is not None and not self._connection.closed:
                self._connection.execute("SELECT 1")
                return True
        except Exception as error:
            logger.warning("liveness connection of %s lost: %r", self.worker_id, error)
        try:
            self.acquire()
        except Exception as error:
            logger.warning("liveness lock of %s not re-taken: %r", self.worker_id, error)
            return False
        return True

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:
                logger.debug("closing the liveness connection failed", exc_info=True)


def live_worker_ids(candidates: Iterable[str]) -> set[str]:
    """The candidates whose liveness lock is held right now (all of them without PostgreSQL)."""
    ids = list(candidates)
    if not ids or not supported():
        return set(ids)
    with connections["default"].cursor() as cursor:
        cursor.execute(
            # pg_locks spans the whole cluster: only this database's workers count.
            "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory'"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid::bigint = %s AND objsubid = 2 AND granted",
            [LOCK_SPACE],
        )
        held = {int(row[0]) for row in cursor.fetchall()}
    return {worker_id for worker_id in ids if lock_key(worker_id) in held}
