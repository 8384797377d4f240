"""The simulated phone's HTTP routes (docs/design.md, "Backends"), mounted under /api/v1/sandbox/.

They exist only in sandbox mode: elsewhere they answer 404 before authentication, whoever asks.
Same auth and error rules as the API, plus a pairing link token in the body, so the end-user
page's "simulate the phone" helper works without a key.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from whatsapp.errors import CompanyNotFound, ValidationFailed
from whatsapp.rest import AUTH_ERRORS, INPUT, SuccessSerializer, error_responses, ok
from whatsapp.sandbox import phone
from whatsapp.services.links import LinkInvalid, pairing_link_resolve


class SandboxLinkSerializer(serializers.Serializer):
    phone_number = serializers.CharField(max_length=64)
    pairing_code = serializers.CharField(
        max_length=20, required=False, help_text="The code shown for this phone, ABCD-EFGH."
    )
    qr = serializers.CharField(
        max_length=2000,
        required=False,
        help_text="The raw QR string, as a phone camera would read it.",
    )
    link_token = serializers.CharField(
        max_length=300,
        required=False,
        help_text="A pairing link token: lets the end-user page simulate the phone without a key.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if bool(attrs.get("pairing_code")) == bool(attrs.get("qr")):
            raise serializers.ValidationError("Pass exactly one of pairing_code or qr.")
        return attrs


class SandboxUnlinkSerializer(serializers.Serializer):
    phone_number = serializers.CharField(max_length=64)
    link_token = serializers.CharField(max_length=300, required=False)


class SandboxLinkResponseSerializer(SuccessSerializer):
    jid = serializers.CharField(help_text="The new linked device")
    phone_number = serializers.CharField(help_text="E.164")


class SandboxUnlinkResponseSerializer(SuccessSerializer):
    unlinked = serializers.ListField(child=serializers.CharField(), help_text="Device JIDs")


class SandboxCaller(BasePermission):
    """Any authenticated caller, or a valid pairing link token in the body (the end-user page's
    "simulate the phone" helper). Outside sandbox mode these routes do not exist (404)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        # SandboxView.initial already answered 404 outside sandbox mode.
        if request.user is not None and getattr(request.user, "is_authenticated", False):
            return True
        token = request.data.get("link_token") if isinstance(request.data, dict) else None
        if isinstance(token, str) and token:
            try:
                pairing_link_resolve(token)
            except LinkInvalid:
                return False
            return True
        return False


class SandboxView(APIView):
    permission_classes = [SandboxCaller]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Outside sandbox mode the routes do not exist, whoever asks: 404 before authentication.
        if settings.WHATSAPP_BACKEND != "sandbox":
            raise CompanyNotFound("No such endpoint or company.")
        super().initial(request, *args, **kwargs)

    def permission_denied(
        self, request: Request, message: str | None = None, code: str | None = None
    ) -> NoReturn:
        raise NotAuthenticated(
            "Authenticate with an API key or staff session, or pass a valid link_token."
        )


class SandboxPhoneLinkView(SandboxView):
    @extend_schema(
        operation_id="sandbox_phone_link",
        tags=["sandbox"],
        summary="Sandbox only: the simulated phone enters a pairing code or scans a QR",
        request=SandboxLinkSerializer,
        responses={
            200: SandboxLinkResponseSerializer,
            **error_responses(INPUT, *AUTH_ERRORS, "COMPANY_NOT_FOUND"),
        },
    )
    def post(self, request: Request) -> Response:
        data = SandboxLinkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        number = data.validated_data["phone_number"]
        try:
            if data.validated_data.get("pairing_code"):
                device = phone.link_with_code(number, data.validated_data["pairing_code"])
            else:
                device = phone.link_with_qr(number, data.validated_data["qr"])
        except phone.SandboxPhoneError as error:
            raise ValidationFailed(str(error)) from None
        return ok({"jid": device.jid, "phone_number": f"+{device.phone}"})


class SandboxPhoneUnlinkView(SandboxView):
    @extend_schema(
        operation_id="sandbox_phone_unlink",
        tags=["sandbox"],
        summary="Sandbox only: remove the phone's linked devices (the session turns logged_out)",
        request=SandboxUnlinkSerializer,
        responses={
            200: SandboxUnlinkResponseSerializer,
            **error_responses(INPUT, *AUTH_ERRORS, "COMPANY_NOT_FOUND"),
        },
    )
    def post(self, request: Request) -> Response:
        data = SandboxUnlinkSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            jids = phone.unlink(data.validated_data["phone_number"])
        except phone.SandboxPhoneError as error:
            raise ValidationFailed(str(error)) from None
        return ok({"unlinked": jids})
