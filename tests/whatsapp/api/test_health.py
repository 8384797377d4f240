"""GET /api/v1/health/: public; database, channel layer, live workers -> 200 or 503."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from whatsapp.models import Worker
from whatsapp.worker import liveness


def test_healthy_with_the_in_process_worker(anonymous, worker):
    response = anonymous.get("/api/v1/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and body["status"] == "ok"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["channel_layer"] == {"ok": True}
    assert body["checks"]["workers"] == {"ok": True, "live": 1, "mode": "inprocess"}


def test_unhealthy_without_a_worker(anonymous, db):
    response = anonymous.get("/api/v1/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["success"] is False
    assert body["error_code"] == "WORKER_UNAVAILABLE"
    assert body["status"] == "unhealthy"
    assert body["checks"]["workers"]["ok"] is False


def test_external_mode_counts_live_worker_heartbeats(anonymous, transactional_db, settings):
    settings.WHATSAPP_WORKER_MODE = "external"
    assert anonymous.get("/api/v1/health/").status_code == 503
    Worker.objects.create(worker_id="w1", heartbeat_at=timezone.now())
    Worker.objects.create(worker_id="w-dead", heartbeat_at=timezone.now() - timedelta(hours=1))
    # On PostgreSQL a worker also holds its liveness lock while its process lives.
    lock = liveness.LivenessLock("w1")
    if liveness.supported():
        lock.acquire()
    try:
        body = anonymous.get("/api/v1/health/").json()
    finally:
        lock.close()
    assert body["checks"]["workers"] == {"ok": True, "live": 1, "mode": "external"}


def test_a_fresh_heartbeat_without_the_liveness_lock_is_dead(anonymous, db, settings):
    if not liveness.supported():
        pytest.skip("liveness locks are PostgreSQL's; SQLite has one in-process worker")
    settings.WHATSAPP_WORKER_MODE = "external"
    Worker.objects.create(worker_id="w-killed", heartbeat_at=timezone.now())
    body = anonymous.get("/api/v1/health/").json()
    assert body["checks"]["workers"] == {"ok": False, "live": 0, "mode": "external"}


def test_a_broken_database_is_reported(anonymous, db, monkeypatch):
    def broken():
        return {"ok": False, "error": "OperationalError"}

    monkeypatch.setattr("whatsapp.selectors._check_database", broken)
    response = anonymous.get("/api/v1/health/")
    assert response.status_code == 503
    assert response.json()["error_code"] == "INTERNAL_ERROR"
    assert "database" in response.json()["error"]


def test_health_ignores_bad_credentials(anonymous, db):
    anonymous.credentials(HTTP_AUTHORIZATION="Bearer nonsense")
    assert anonymous.get("/api/v1/health/").status_code in (200, 503)
