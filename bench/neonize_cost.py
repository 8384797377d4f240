"""What a linked company costs with the real neonize: RSS, threads and file descriptors of the
worker's shared neonize host, and PostgreSQL server connections, with 1, 50 and 200 companies
linked on the WhatsApp emulator (no network needed).

    .venv/bin/python bench/neonize_cost.py [--sizes 1,50,200]

Runs in a throw-away folder with SQLite unless DATABASE_URL names PostgreSQL; then whatsmeow's
store is reached through a PgBouncer in transaction mode started for the run (Debian's
`pgbouncer`), as the README's production section recommends.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="pairing-bench-"))
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pairing_site.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connections  # noqa: E402

from emulator import pgbouncer  # noqa: E402
from emulator.certs import RootKey  # noqa: E402
from emulator.control import Emulator  # noqa: E402
from emulator.fleet import ProcessCost, link_fleet, processes_cost  # noqa: E402
from emulator.neonize_copy import client_env, patched_neonize  # noqa: E402
from whatsapp.backends.neonize import store  # noqa: E402
from whatsapp.backends.neonize.backend import NeonizeBackend, run_db  # noqa: E402

POOL = 8


def server_connections(bouncer: pgbouncer.PgBouncer | None) -> str:
    if bouncer is None:
        return "n/a (SQLite)"
    database = connections["default"].settings_dict["NAME"]
    return str(bouncer.server_connections(database))


async def measure(sizes: list[int], bouncer: pgbouncer.PgBouncer | None) -> int:
    root = RootKey.generate()
    copy = patched_neonize(Path(tempfile.mkdtemp(prefix="neonize-copy-")), root.public)
    emulator = await asyncio.to_thread(Emulator(speed=20.0, root=root).start)
    settings.NEONIZE_HOST_EXTRA_ENV = client_env(
        {}, pythonpath=copy, proxy_url=emulator.proxy_url, ca_file=emulator.ca_file
    )
    backend = NeonizeBackend()
    await backend.start()
    rows: list[tuple[int, ProcessCost, str, float]] = []
    linked = 0
    try:
        for size in sizes:
            started = time.monotonic()
            fleet = await link_fleet(backend, emulator, size - linked, prefix=f"bench{size}")
            seconds = time.monotonic() - started
            linked = size
            await asyncio.sleep(3)  # post-login work settles
            shared = [host.pid for host in backend.hosts if host.kind == "shared"]
            cost = processes_cost(shared)
            rows.append((size, cost, await asyncio.to_thread(server_connections, bouncer), seconds))
            print(f"  linked {size} ({len(fleet)} new in {seconds:.1f} s)", flush=True)
    finally:
        await backend.shutdown()
        await asyncio.to_thread(emulator.stop)
        for jid in await run_db(store.device_jids):
            await run_db(store.credentials_delete, device_jid=jid)

    print()
    print("linked | shared host RSS | threads | fds | PostgreSQL server connections")
    print("-------|-----------------|---------|-----|------------------------------")
    for size, cost, servers, _seconds in rows:
        print(
            f"{size:>6} | {cost.rss_kib / 1024:>11.1f} MiB | {cost.threads:>7} | {cost.fds:>3} "
            f"| {servers}"
        )
    if len(rows) >= 2:
        (first, base, _, _), (last, top, _, _) = rows[0], rows[-1]
        extra = last - first
        print()
        print(
            f"per additional linked company ({first} -> {last}): "
            f"{(top.rss_kib - base.rss_kib) / 1024 / extra:.2f} MiB RSS, "
            f"{(top.threads - base.threads) / extra:.2f} threads, "
            f"{(top.fds - base.fds) / extra:.2f} fds"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,50,200", help="companies linked at each step")
    sizes = sorted({int(size) for size in parser.parse_args().sizes.split(",")})
    print(f"neonize cost on the WhatsApp emulator, steps {sizes}", flush=True)
    if store.is_postgres():
        if not pgbouncer.available():
            print("PostgreSQL without pgbouncer: install it (apt-get install pgbouncer)")
            return 1
        database = connections["default"].settings_dict
        with pgbouncer.PgBouncer(
            server_host=database.get("HOST") or "127.0.0.1",
            server_port=int(database.get("PORT") or 5432),
            server_user=database.get("USER") or "postgres",
            pool_size=POOL,
        ) as bouncer:
            settings.NEONIZE_STORE_URL = bouncer.url(database["NAME"])
            print(f"whatsmeow's store through PgBouncer, transaction mode, pool {POOL}")
            return asyncio.run(measure(sizes, bouncer))
    return asyncio.run(measure(sizes, None))


if __name__ == "__main__":
    sys.exit(main())
