"""Domain models (docs/design.md, "Domain")."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

SLUG_VALIDATOR = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
    "Use 1-64 letters, digits, '-' or '_', starting with a letter or digit.",
)


def _link_secret() -> str:
    return secrets.token_urlsafe(24)


class Company(models.Model):
    slug = models.CharField(
        max_length=64,
        unique=True,
        validators=[SLUG_VALIDATOR],
        help_text="Public id used in every URL; may be the integrator's own id.",
    )
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    # Pairing links are signed with this; rotating it voids every link issued before.
    link_secret = models.CharField(max_length=64, default=_link_secret, editable=False)

    class Meta:
        ordering = ["name", "slug"]
        verbose_name_plural = "companies"

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    def rotate_link_secret(self) -> None:
        self.link_secret = _link_secret()
        self.save(update_fields=["link_secret"])


class SessionStatus(models.TextChoices):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    QR_READY = "qr_ready"
    CODE_READY = "code_ready"
    AUTHENTICATED = "authenticated"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    LOGGED_OUT = "logged_out"
    FAILED = "failed"


# The link is live in these; stored credentials in any other status are stale (docs/design.md, "Linking rules").
LIVE_STATUSES = frozenset(
    {SessionStatus.CONNECTED, SessionStatus.AUTHENTICATED, SessionStatus.RECONNECTING}
)
PAIRING_STATUSES = frozenset(
    {SessionStatus.CONNECTING, SessionStatus.QR_READY, SessionStatus.CODE_READY}
)


class WhatsAppSession(models.Model):
    company = models.OneToOneField(Company, on_delete=models.CASCADE, related_name="session")
    status = models.CharField(
        max_length=20,
        choices=SessionStatus.choices,
        default=SessionStatus.DISCONNECTED,
        db_index=True,
    )
    status_changed_at = models.DateTimeField(default=timezone.now)
    # Whether a worker should keep a client running for this company (linking or linked).
    wants_running = models.BooleanField(default=False, db_index=True)
    # Keys this company's client in the backend (neonize's uuid); never shared between companies.
    client_uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)

    linked_phone = models.CharField(max_length=20, blank=True, help_text="E.164")
    linked_jid = models.CharField(max_length=100, blank=True, help_text="Full device JID")
    linked_at = models.DateTimeField(null=True, blank=True)
    # The Python side's truth about "a paired device exists in the store" (docs/whatsapp.md: guard
    # neonize calls that panic on a missing device).
    has_credentials = models.BooleanField(default=False)

    last_error_code = models.CharField(max_length=40, blank=True)
    last_error_message = models.CharField(max_length=500, blank=True)

    # The live linking window, if any.
    current_attempt = models.ForeignKey(
        "PairingAttempt", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    qr_code = models.TextField(blank=True)
    qr_expires_at = models.DateTimeField(null=True, blank=True)
    window_expires_at = models.DateTimeField(null=True, blank=True)
    pairing_code = models.CharField(max_length=9, blank=True)
    pairing_phone = models.CharField(max_length=20, blank=True)
    pairing_expires_at = models.DateTimeField(null=True, blank=True)

    # Ownership (docs/design.md, "Topology and ownership"): exactly one worker runs a company at a time.
    owner = models.CharField(max_length=120, blank=True, db_index=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    lease_acquired_at = models.DateTimeField(null=True, blank=True)

    # Per-company operation mutex, valid across processes (see services.locks).
    lock_token = models.CharField(max_length=40, blank=True)
    lock_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "WhatsApp session"

    def __str__(self) -> str:
        return f"{self.company.slug}: {self.status}"

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def is_pairing(self) -> bool:
        return self.status in PAIRING_STATUSES


class AttemptMethod(models.TextChoices):
    QR = "qr"
    CODE = "code"
    RESET = "reset"


class AttemptOutcome(models.TextChoices):
    LINKED = "linked"
    EXPIRED = "expired"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"
    # For reset rows (credentials deleted by staff, API, or automatically when stale).
    CLEARED = "cleared"


class PairingAttempt(models.Model):
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="attempts")
    method = models.CharField(max_length=10, choices=AttemptMethod.choices)
    phone = models.CharField(max_length=20, blank=True, help_text="E.164")
    started_by = models.CharField(
        max_length=120, help_text="user:<name>, api_key:<prefix>, link:<id>, system, cli"
    )
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    qr_rotations = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=12, choices=AttemptOutcome.choices, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    # A code request that actually reached WhatsApp (counts against the per-phone cap).
    reached_whatsapp = models.BooleanField(default=False)
    # Started from a WebSocket: cancelled when its last subscriber leaves (docs/design.md, "Linking rules").
    via_socket = models.BooleanField(default=False)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["phone", "method", "started_at"])]

    def __str__(self) -> str:
        return f"{self.company.slug} {self.method} {self.outcome or 'running'}"

    @property
    def is_open(self) -> bool:
        return not self.outcome


class AuditAction(models.TextChoices):
    LINK_CREATED = "link_created"
    LINKS_REVOKED = "links_revoked"
    RECONNECT = "reconnect"
    LOGOUT = "logout"


class AuditEvent(models.Model):
    """Who did what to a company, for actions that are not pairing attempts (those, code
    requests and resets included, are PairingAttempt rows)."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="audit_events")
    action = models.CharField(max_length=20, choices=AuditAction.choices)
    actor = models.CharField(max_length=120)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.company_id} {self.action} by {self.actor}"


class PhoneCooldown(models.Model):
    """A phone WhatsApp answered 429 rate-overlimit for: no requests until `until`."""

    phone = models.CharField(max_length=20, unique=True)
    until = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"cooldown until {self.until:%Y-%m-%d %H:%M}"


def hash_api_key(raw_key: str) -> str:
    # Keys are 40+ random characters, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(raw_key.encode()).hexdigest()


class ApiKey(models.Model):
    PREFIX_LENGTH = 8

    name = models.CharField(max_length=100)
    company = models.ForeignKey(
        Company,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="api_keys",
        help_text="Empty = global key",
    )
    prefix = models.CharField(max_length=PREFIX_LENGTH, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        scope = self.company.slug if self.company is not None else "global"
        return f"{self.name} ({scope}, {self.prefix}…)"

    @property
    def is_global(self) -> bool:
        return self.company_id is None

    @classmethod
    def issue(cls, *, name: str, company: Company | None, created_by=None) -> tuple[ApiKey, str]:
        """Create a key; the raw key is returned once and never stored."""
        raw_key = "wps_" + secrets.token_urlsafe(32)
        key = cls.objects.create(
            name=name,
            company=company,
            prefix=raw_key[4 : 4 + cls.PREFIX_LENGTH],
            key_hash=hash_api_key(raw_key),
            created_by=created_by,
        )
        return key, raw_key

    @classmethod
    def find(cls, raw_key: str) -> ApiKey | None:
        if not raw_key or len(raw_key) > 200:
            return None
        return (
            cls.objects.select_related("company")
            .filter(key_hash=hash_api_key(raw_key), revoked_at__isnull=True)
            .first()
        )


class Worker(models.Model):
    """A running whatsapp_worker (or in-process worker), with its heartbeat."""

    worker_id = models.CharField(max_length=120, unique=True)
    channel_name = models.CharField(max_length=200, blank=True)
    hostname = models.CharField(max_length=200, blank=True)
    pid = models.IntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(default=timezone.now, db_index=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.worker_id
