"""Backend selection (docs/design.md, "Backends"): `WHATSAPP_BACKEND` names an entry of
`BACKENDS`, a registry of dotted paths, so the product never imports a backend it does not use.

- `get_backend()` is the one accessor for the configured backend, cached per name: services,
  selectors and signals use it for store-side calls (`credentials_exists`, `credentials_delete`).
- `create_backend()` builds a fresh instance for a worker, which owns its life cycle
  (`start()` / `shutdown()` on the worker's own event loop).
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string

from whatsapp.backends.base import Backend

BACKENDS: dict[str, str] = {
    "neonize": "whatsapp.backends.neonize.backend.NeonizeBackend",
    "sandbox": "whatsapp.sandbox.backend.SandboxBackend",
}


def backend_class(name: str) -> type[Backend]:
    try:
        path = BACKENDS[name]
    except KeyError:
        raise ValueError(
            f"unknown WhatsApp backend {name!r}; use one of: {', '.join(sorted(BACKENDS))}"
        ) from None
    cls: type[Backend] = import_string(path)
    return cls


def create_backend(name: str | None = None) -> Backend:
    """A new instance of the named (default: configured) backend."""
    return backend_class(name or settings.WHATSAPP_BACKEND)()


@lru_cache(maxsize=4)
def _shared(name: str) -> Backend:
    return create_backend(name)


def get_backend() -> Backend:
    """The configured backend, one shared instance per name."""
    return _shared(settings.WHATSAPP_BACKEND)


def reset_backends() -> None:
    """Forget the shared instances (tests that change `WHATSAPP_BACKEND`)."""
    _shared.cache_clear()
