"""Bad configuration stops the process at start with a message naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from pairing_site import env

ROOT = Path(__file__).resolve().parents[2]


def start_with(tmp_path, **variables) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "DATABASE_URL",
            "REDIS_URL",
            "SECRET_KEY",
            "DEBUG",
            "WHATSAPP_WORKER_MODE",
            "PUBLIC_BASE_URL",
        }
    }
    clean.update(DATA_DIR=str(tmp_path), **variables)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"WHATSAPP_BACKEND": "baileys"},
            "WHATSAPP_BACKEND='baileys' must be one of: neonize, sandbox",
        ),
        (
            {"WHATSAPP_OPERATION_TIMEOUT": "soon"},
            "WHATSAPP_OPERATION_TIMEOUT='soon' is not a number",
        ),
        ({"WHATSAPP_PAIRING_CODE_CAP": "0"}, "WHATSAPP_PAIRING_CODE_CAP=0 is below the minimum 1"),
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        (
            {"DATABASE_URL": "mysql://x/y", "SECRET_KEY": "k" * 40},
            "DATABASE_URL must start with postgres://",
        ),
        ({"DEBUG": "0"}, "SECRET_KEY must be set when DEBUG is off"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY must be at least 32 characters"),
        ({"WHATSAPP_WORKER_MODE": "external"}, "WHATSAPP_WORKER_MODE=external needs REDIS_URL"),
        (
            {"WHATSAPP_HEARTBEAT_INTERVAL": "10", "WHATSAPP_LEASE_TTL": "15"},
            "at most half of WHATSAPP_LEASE_TTL",
        ),
        ({"REDIS_URL": "http://x", "SECRET_KEY": "k" * 40}, "REDIS_URL must start with redis://"),
        ({"PUBLIC_BASE_URL": "pairing.example.com"}, "PUBLIC_BASE_URL must start with http://"),
        ({"WHATSAPP_RATE_LIMIT_COOLDOWN": "999999999999"}, "above the maximum"),
    ],
)
def test_bad_values_fail_at_start_with_a_clear_message(tmp_path, variables, message):
    result = start_with(tmp_path, **variables)
    assert result.returncode != 0
    assert message in result.stderr


def test_no_environment_gives_the_embedded_default(tmp_path):
    result = start_with(tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "secret_key").exists()  # generated once, kept for restarts


def test_database_urls_are_parsed_strictly():
    parsed = env.database_from_url("postgres://user:p%40ss@db.example:5433/app?sslmode=require")
    assert (parsed["NAME"], parsed["USER"], parsed["PASSWORD"], parsed["HOST"], parsed["PORT"]) == (
        "app",
        "user",
        "p@ss",
        "db.example",
        "5433",
    )
    assert parsed["OPTIONS"] == {"sslmode": "require"}
    with pytest.raises(ImproperlyConfigured, match="no database name"):
        env.database_from_url("postgres://user@host:5432/")
    with pytest.raises(ImproperlyConfigured, match="invalid port"):
        env.database_from_url("postgres://user@host:port/db")


def test_production_without_public_base_url_warns_at_start(tmp_path):
    result = start_with(tmp_path, DEBUG="0", SECRET_KEY="k" * 40)
    assert result.returncode == 0
    assert "whatsapp.W001" in result.stderr and "PUBLIC_BASE_URL" in result.stderr
