"""The simulated WhatsApp server's state.

It lives in the database, not in memory, because the two sides of a link run in different
processes: the client runs in the worker, the simulated phone acts from the web process or from
`manage.py sandbox_phone`. Clients notice the phone's actions by polling their own row by primary
key, which keeps each poll one tiny indexed query.
"""

from __future__ import annotations

from django.db import models


class LoginWindow(models.Model):
    """One open login socket of an unlinked client: its QR refs and its latest pairing code."""

    class State(models.TextChoices):
        OPEN = "open"
        LINKED = "linked"
        CLOSED = "closed"

    client_uuid = models.CharField(max_length=64, db_index=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.OPEN)
    opened_at = models.DateTimeField()
    closes_at = models.DateTimeField()  # the end of the whole window (all refs)
    refs_issued = models.PositiveSmallIntegerField(default=0)
    current_qr = models.TextField(blank=True)
    current_qr_expires_at = models.DateTimeField(null=True, blank=True)
    # Only the latest code is valid, so one set of columns is enough.
    code = models.CharField(max_length=9, blank=True)
    code_phone = models.CharField(max_length=20, blank=True)
    code_requested_at = models.DateTimeField(null=True, blank=True)
    linked_phone = models.CharField(max_length=20, blank=True)
    linked_jid = models.CharField(max_length=64, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["state", "closes_at"], name="sandbox_window_open_idx"),
            models.Index(fields=["code_phone", "state"], name="sandbox_window_code_idx"),
        ]

    def __str__(self) -> str:
        return f"login window {self.pk} of {self.client_uuid} ({self.state})"


class PhoneAccount(models.Model):
    """A simulated WhatsApp account; hands out device numbers that are never reused.

    Reusing a number after an unlink would let an old session record resume someone else's device.
    """

    phone = models.CharField(max_length=20, unique=True)
    last_device_number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return self.phone


class Device(models.Model):
    """A linked companion device: the sandbox's credentials store."""

    jid = models.CharField(max_length=64, unique=True)
    client_uuid = models.CharField(max_length=64, db_index=True)
    phone = models.CharField(max_length=20, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The client currently connected with these keys; a second client taking it over is what
    # makes the first one receive StreamReplaced.
    connection_token = models.CharField(max_length=32, blank=True)
    # Bumped by the phone to drop the live connection once (the client compares it to what it saw).
    drops = models.PositiveIntegerField(default=0)
    banned_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.jid


class LoginRefusal(models.Model):
    """Set by the phone's operator: the next login socket (of one client, or any) is refused the
    way WhatsApp refuses it, e.g. 405 client outdated before any QR, or a passkey request."""

    class Kind(models.TextChoices):
        CLIENT_OUTDATED = "client_outdated"
        PASSKEY = "passkey"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    client_uuid = models.CharField(max_length=64, blank=True)  # blank: the next client, any
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind} for {self.client_uuid or 'the next client'}"


class CodeRequest(models.Model):
    """Pairing-code requests that reached the simulated server, for its rate-overlimit answer."""

    phone = models.CharField(max_length=20)
    client_uuid = models.CharField(max_length=64)
    requested_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["phone", "requested_at"], name="sandbox_code_request_idx")]

    def __str__(self) -> str:
        return f"code request for {self.phone} at {self.requested_at:%H:%M:%S}"
