"""`make bench`: latency of the linking engine on this machine, against the sandbox.

Runs in a throw-away data folder (SQLite, in-process worker) unless DATABASE_URL is set, and
prints p50/p95 for: a pairing code request (new window), a repeated request (de-duplicated),
and phone link -> `connected` persisted. Targets (see README): code p95 < 500 ms, repeat
p95 < 50 ms, link -> connected p95 < 1 s.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="pairing-bench-"))
os.environ["WHATSAPP_BACKEND"] = "sandbox"
os.environ.setdefault("WHATSAPP_WORKER_MODE", "inprocess")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pairing_site.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from whatsapp.models import Company, SessionStatus, WhatsAppSession  # noqa: E402
from whatsapp.sandbox import phone  # noqa: E402
from whatsapp.services import linking  # noqa: E402
from whatsapp.services.actors import SYSTEM  # noqa: E402
from whatsapp.services.state import session_get  # noqa: E402
from whatsapp.worker.inprocess import ThreadedWorker  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "20"))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def report(name: str, seconds: list[float], target_ms: float) -> bool:
    p50, p95 = percentile(seconds, 0.5) * 1000, percentile(seconds, 0.95) * 1000
    ok = p95 <= target_ms
    print(
        f"{name:<34} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   target p95 <= {target_ms:.0f} ms "
        f"{'OK' if ok else 'MISSED'}"
    )
    return ok


def main() -> int:
    call_command("migrate", verbosity=0)
    worker = ThreadedWorker()
    worker.start()
    fresh, repeat, link = [], [], []
    try:
        for index in range(ROUNDS):
            company = Company.objects.create(slug=f"bench-{index}-{time.time_ns()}", name="Bench")
            session_get(company)
            number = f"+7901555{index + 1111:04d}"  # never one of the sandbox's magic endings
            started = time.perf_counter()
            code = linking.pairing_code_request(company=company, phone_number=number, actor=SYSTEM)
            fresh.append(time.perf_counter() - started)
            started = time.perf_counter()
            linking.pairing_code_request(company=company, phone_number=number, actor=SYSTEM)
            repeat.append(time.perf_counter() - started)
            started = time.perf_counter()
            phone.link_with_code(number, code.pairing_code)
            while WhatsAppSession.objects.get(company=company).status != SessionStatus.CONNECTED:
                if time.perf_counter() - started > 10:
                    raise SystemExit("link did not complete in 10 s")
                time.sleep(0.005)
            link.append(time.perf_counter() - started)
    finally:
        worker.stop()
    print(f"{ROUNDS} rounds, sandbox backend, {django.db.connection.vendor}")
    results = [
        report("pairing code (new window)", fresh, 500),
        report("pairing code (repeat, de-dup)", repeat, 50),
        report("phone link -> connected", link, 1000),
    ]
    print("median of link -> connected:", f"{statistics.median(link) * 1000:.0f} ms")
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
