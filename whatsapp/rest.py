"""REST plumbing shared by the API (`whatsapp/api/`) and the sandbox's routes: the success and
error envelopes and their documented shapes (docs/design.md, "REST API" and "Errors")."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, status
from rest_framework.response import Response

from whatsapp.errors import ERRORS_BY_CODE

ERROR_CODES = sorted(ERRORS_BY_CODE)


class SuccessSerializer(serializers.Serializer):
    success = serializers.BooleanField(help_text="Always true on success.")


class ErrorSerializer(serializers.Serializer):
    success = serializers.BooleanField(help_text="Always false.")
    error_code = serializers.ChoiceField(choices=ERROR_CODES)
    error = serializers.CharField(help_text="A human message saying what is wrong and what to do.")
    details = serializers.DictField(required=False, help_text="Field errors, reason, ...")
    retry_after = serializers.IntegerField(
        required=False, help_text="Seconds to wait (also the Retry-After header), on 429."
    )


def ok(data: dict[str, Any] | None = None, *, http_status: int = status.HTTP_200_OK) -> Response:
    return Response({"success": True, **(data or {})}, status=http_status)


def error_responses(*codes: str) -> dict[int, OpenApiResponse]:
    """Schema responses for these error codes, grouped by HTTP status."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(ERRORS_BY_CODE[code].http_status, []).append(code)
    return {
        http_status: OpenApiResponse(ErrorSerializer, description=" | ".join(grouped))
        for http_status, grouped in by_status.items()
    }


AUTH_ERRORS = ("NOT_AUTHENTICATED", "RATE_LIMITED", "INTERNAL_ERROR")
COMPANY_ERRORS = (*AUTH_ERRORS, "COMPANY_NOT_FOUND")
# Views that read a body or query parameters can also answer VALIDATION_ERROR.
INPUT = "VALIDATION_ERROR"
