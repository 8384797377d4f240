"""Strict parsing of environment variables.

Every setting of the service comes from the environment. A value that cannot be parsed stops
the process at start with a message that names the variable and what it expected, instead of
surfacing later as a confusing runtime failure.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def string(name: str, default: str = "") -> str:
    value = raw(name)
    return default if value is None else value


def boolean(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use 1/0, true/false, yes/no")


def integer(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    value = raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number") from None
    _check_range(name, number, minimum, maximum)
    return number


def number(
    name: str, default: float, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    value = raw(name)
    if value is None:
        return default
    try:
        parsed = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None
    if parsed != parsed or parsed in (float("inf"), float("-inf")):
        raise ImproperlyConfigured(f"{name}={value!r} is not a finite number")
    _check_range(name, parsed, minimum, maximum)
    return parsed


def choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = raw(name)
    if value is None:
        return default
    for option in choices:
        if value.lower() == option.lower():
            return option
    raise ImproperlyConfigured(f"{name}={value!r} must be one of: {', '.join(choices)}")


def listing(name: str, default: list[str]) -> list[str]:
    value = raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def _check_range(name: str, value: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={value} is above the maximum {maximum}")


def database_from_url(url: str, *, name: str = "DATABASE_URL") -> dict:
    """Turn `postgres://user:pass@host:5432/db?sslmode=disable` into a Django DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme in ("postgres", "postgresql", "pgsql"):
        database = unquote(parts.path.lstrip("/"))
        if not database:
            raise ImproperlyConfigured(f"{name} has no database name (…/dbname at the end)")
        try:
            port = parts.port
        except ValueError:
            raise ImproperlyConfigured(f"{name} has an invalid port") from None
        options = dict(parse_qsl(parts.query))
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": database,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(port or ""),
            "OPTIONS": options,
            "CONN_MAX_AGE": 0,
            "CONN_HEALTH_CHECKS": True,
        }
    if parts.scheme == "sqlite":
        path = unquote(url[len("sqlite://") :])
        if path.startswith("/"):
            path = path[1:] if path.startswith("//") else path
        if not path:
            raise ImproperlyConfigured(
                f"{name} needs a file path: sqlite:////absolute/path.sqlite3"
            )
        return sqlite_database(path)
    raise ImproperlyConfigured(
        f"{name} must start with postgres:// (or postgresql://) or sqlite://, got {parts.scheme!r}"
    )


def sqlite_database(path: str) -> dict:
    # WAL lets the web process read while the worker writes; the busy timeout makes writers wait
    # for each other instead of failing with "database is locked"; IMMEDIATE transactions take
    # the write lock up front so two writers never deadlock on a lock upgrade.
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": path,
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=20000; PRAGMA synchronous=NORMAL;",
        },
    }


def networks(name: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Comma-separated IP addresses or networks (`10.0.0.0/8, 192.0.2.7`)."""
    result = []
    for item in string(name, "").split(","):
        if not item.strip():
            continue
        try:
            result.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {item.strip()!r} is not an address or network"
            ) from None
    return result


def redis_url_checked(url: str, *, name: str = "REDIS_URL") -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ImproperlyConfigured(f"{name} must start with redis://, rediss:// or unix://")
    return url
