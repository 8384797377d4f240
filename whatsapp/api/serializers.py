"""Request validation and the documented shapes of every response (the OpenAPI schema)."""

from __future__ import annotations

from rest_framework import serializers

from whatsapp.errors import STATUS_REASONS
from whatsapp.models import SLUG_VALIDATOR, AttemptMethod, AttemptOutcome, SessionStatus
from whatsapp.rest import ERROR_CODES, SuccessSerializer

MAX_LINK_TTL = 30 * 86400

# --- requests ------------------------------------------------------------------------------


class CompanyCreateSerializer(serializers.Serializer):
    slug = serializers.CharField(
        max_length=64,
        validators=[SLUG_VALIDATOR],
        help_text="Public id used in every URL; may be your own id.",
    )
    name = serializers.CharField(max_length=200)


class StrictBooleanField(serializers.BooleanField):
    """Only JSON true/false: this flag deletes credentials, so "yes" or 1 must not pass for it."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class PairingCodeRequestSerializer(serializers.Serializer):
    phone_number = serializers.CharField(
        max_length=64, help_text="International number in any common form, e.g. +7 900 123-45-67."
    )
    replace_existing = StrictBooleanField(
        default=False,
        help_text="Replace a live link with another phone (else CREDENTIALS_CONFLICT).",
    )


class PairingLinkCreateSerializer(serializers.Serializer):
    expires_in = serializers.IntegerField(
        required=False,
        min_value=60,
        max_value=MAX_LINK_TTL,
        help_text="Lifetime in seconds (default PAIRING_LINK_TTL, 24 h).",
    )


class PageQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100, default=20)
    offset = serializers.IntegerField(required=False, min_value=0, max_value=1_000_000, default=0)


# --- responses -----------------------------------------------------------------------------


class QrSerializer(serializers.Serializer):
    qr = serializers.CharField(help_text="The raw QR string")
    image = serializers.CharField(help_text="PNG data URL")
    expires_at = serializers.DateTimeField(allow_null=True)


class PairingCodeSnapshotSerializer(serializers.Serializer):
    pairing_code = serializers.CharField(help_text="ABCD-EFGH")
    phone_number = serializers.CharField(help_text="E.164")
    expires_at = serializers.DateTimeField()
    expires_in = serializers.IntegerField()


class SessionSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=SessionStatus.choices)
    status_changed_at = serializers.DateTimeField(allow_null=True)
    linked_phone = serializers.CharField(allow_null=True, help_text="E.164")
    linked_at = serializers.DateTimeField(allow_null=True)
    last_error_code = serializers.CharField(
        allow_null=True,
        help_text="A status reason (" + ", ".join(STATUS_REASONS) + ") or an error code.",
    )
    last_error = serializers.CharField(allow_null=True)
    has_credentials = serializers.BooleanField()
    attempt_id = serializers.IntegerField(allow_null=True, help_text="The live attempt, if any.")
    qr = QrSerializer(allow_null=True, help_text="The live QR, if any.")
    pairing_code = PairingCodeSnapshotSerializer(
        allow_null=True, help_text="The live code, if any."
    )


class SessionResponseSerializer(SuccessSerializer, SessionSerializer):
    pass


class CompanySerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    created_at = serializers.DateTimeField()
    session = SessionSerializer()


class CompanyResponseSerializer(SuccessSerializer, CompanySerializer):
    pass


class PageSerializer(SuccessSerializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


class CompanyListResponseSerializer(PageSerializer):
    results = CompanySerializer(many=True)


class QrResponseSerializer(SuccessSerializer, QrSerializer):
    pass


class PairingCodeResponseSerializer(SuccessSerializer):
    pairing_code = serializers.CharField(help_text="ABCD-EFGH: enter it on the phone")
    phone_number = serializers.CharField(help_text="E.164")
    expires_at = serializers.DateTimeField(help_text="The real end of the login window")
    expires_in = serializers.IntegerField(help_text="Seconds left")
    attempt_id = serializers.IntegerField()


class LogoutResponseSerializer(SuccessSerializer):
    had_credentials = serializers.BooleanField()
    unlinked_on_whatsapp = serializers.BooleanField(
        help_text="False when WhatsApp could not be reached: the credentials are deleted anyway."
    )
    session = SessionSerializer()


class SessionHealthResponseSerializer(SuccessSerializer):
    connected = serializers.BooleanField()
    status = serializers.ChoiceField(choices=SessionStatus.choices)
    since = serializers.DateTimeField(allow_null=True)
    last_error_code = serializers.CharField(allow_null=True)
    last_error = serializers.CharField(allow_null=True)
    worker = serializers.CharField(allow_null=True, help_text="The owning worker, if any")
    lease_age_seconds = serializers.FloatField(allow_null=True)
    lease_expires_in_seconds = serializers.FloatField(allow_null=True)
    backend = serializers.CharField()


class CredentialsSerializer(serializers.Serializer):
    has_credentials = serializers.BooleanField()
    stored_phone = serializers.CharField(allow_null=True)
    linked_at = serializers.DateTimeField(allow_null=True)
    can_reset = serializers.BooleanField()


class CredentialsResponseSerializer(SuccessSerializer, CredentialsSerializer):
    pass


class CredentialsResetResponseSerializer(SuccessSerializer, CredentialsSerializer):
    reset_attempt_id = serializers.IntegerField(help_text="The audit row of this reset")


class AttemptSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    method = serializers.ChoiceField(choices=AttemptMethod.choices)
    phone = serializers.CharField(allow_null=True, help_text="E.164")
    started_by = serializers.CharField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    qr_rotations = serializers.IntegerField()
    outcome = serializers.ChoiceField(
        choices=AttemptOutcome.choices, allow_null=True, help_text="null while running"
    )
    error_code = serializers.CharField(allow_null=True)
    via_socket = serializers.BooleanField()
    note = serializers.CharField(allow_blank=True)


class AttemptListResponseSerializer(PageSerializer):
    results = AttemptSerializer(many=True)


class PairingLinkResponseSerializer(SuccessSerializer):
    url = serializers.URLField()
    expires_at = serializers.DateTimeField()


class CheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    error = serializers.CharField(required=False)


class WorkersCheckSerializer(CheckSerializer):
    live = serializers.IntegerField()
    mode = serializers.ChoiceField(choices=["inprocess", "external"])


class ChecksSerializer(serializers.Serializer):
    database = CheckSerializer()
    channel_layer = CheckSerializer()
    workers = WorkersCheckSerializer()


class ServiceHealthSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    status = serializers.ChoiceField(choices=["ok", "unhealthy"])
    checks = ChecksSerializer()
    error_code = serializers.ChoiceField(choices=ERROR_CODES, required=False)
    error = serializers.CharField(required=False)
