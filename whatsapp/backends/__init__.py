"""Backend selection: `WHATSAPP_BACKEND` = neonize (default) | sandbox."""

from __future__ import annotations

from django.conf import settings

from whatsapp.backends.base import Backend


def get_backend(name: str | None = None) -> Backend:
    name = name or settings.WHATSAPP_BACKEND
    if name == "sandbox":
        from whatsapp.sandbox.backend import SandboxBackend

        return SandboxBackend()
    if name == "neonize":
        from whatsapp.backends.neonize.backend import NeonizeBackend

        return NeonizeBackend()
    raise ValueError(f"unknown WhatsApp backend {name!r}")
