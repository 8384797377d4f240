"""A throw-away PgBouncer in transaction mode in front of a PostgreSQL server, for tests and
benchmarks of whatsmeow's store: every linked client keeps its own `database/sql` pool, and
PgBouncer is what bounds the server connections they cost (docs/whatsapp.md, "Database
connections").

Uses Debian's `pgbouncer` binary. PgBouncer refuses to run as root, so as root it runs as the
`postgres` user (or `nobody`). Listens on 127.0.0.1 only, on a free port.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

STARTUP_SECONDS = 10.0


def available() -> bool:
    return shutil.which("pgbouncer") is not None


class PgBouncer:
    def __init__(
        self,
        *,
        server_host: str = "127.0.0.1",
        server_port: int = 5432,
        server_user: str = "postgres",
        pool_size: int = 8,
    ) -> None:
        self.server_host = server_host
        self.server_port = server_port
        self.server_user = server_user
        self.pool_size = pool_size
        self.port = 0
        self.folder: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PgBouncer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> PgBouncer:
        binary = shutil.which("pgbouncer")
        if binary is None:
            raise RuntimeError("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
        self.folder = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
        self.folder.chmod(0o777)
        self.port = free_port()
        config = self.folder / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"* = host={self.server_host} port={self.server_port} user={self.server_user}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = any\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {self.pool_size}\n"
            "max_client_conn = 5000\n"
            f"admin_users = {self.server_user}\n"
            "ignore_startup_parameters = extra_float_digits\n"
        )
        config.chmod(0o644)
        command = [binary, str(config)]
        if os.geteuid() == 0:
            command = ["runuser", "-u", _unprivileged_user(), "--", *command]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=(self.folder / "pgbouncer.log").open("wb"),
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited at start: {self.log()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"pgbouncer did not listen within {STARTUP_SECONDS} s")

    def url(self, database: str) -> str:
        """A lib/pq URL for whatsmeow. `binary_parameters=yes` makes lib/pq send each query in
        one round trip (no separate describe), which is what transaction pooling needs."""
        return (
            f"postgres://{self.server_user}@127.0.0.1:{self.port}/{database}"
            "?sslmode=disable&binary_parameters=yes"
        )

    def pools(self) -> list[dict[str, Any]]:
        """PgBouncer's `SHOW POOLS`: client and server connections per database and user."""
        import psycopg

        with psycopg.connect(
            f"postgres://{self.server_user}@127.0.0.1:{self.port}/pgbouncer",
            autocommit=True,
            prepare_threshold=None,
        ) as admin:
            cursor = admin.execute("SHOW POOLS")
            names = [column.name for column in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def server_connections(self, database: str) -> int:
        """Server connections PgBouncer holds for `database`, whatever their state."""
        total = 0
        for pool in self.pools():
            if pool.get("database") == database:
                total += sum(
                    int(pool.get(key) or 0)
                    for key in ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login")
                )
        return total

    def client_connections(self, database: str) -> int:
        return sum(
            int(pool.get("cl_active") or 0) + int(pool.get("cl_waiting") or 0)
            for pool in self.pools()
            if pool.get("database") == database
        )

    def log(self) -> str:
        if self.folder is None:
            return ""
        path = self.folder / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _unprivileged_user() -> str:
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("no unprivileged user to run pgbouncer as")
