"""One error shape: the same error reaches a REST caller and a socket with the same fields."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.whatsapp.ws.helpers import connected, receive_until
from whatsapp import errors
from whatsapp.services import linking

pytestmark = pytest.mark.django_db(transaction=True)

CASES = [
    errors.InvalidPhone("Not on WhatsApp.", details={"reason": "not_on_whatsapp"}),
    errors.RateLimited("Wait.", retry_after=120, details={"reason": "whatsapp_rate_limit"}),
    errors.OperationTimeout(),
]


@pytest.mark.parametrize("error", CASES, ids=[error.code for error in CASES])
async def test_rest_and_socket_carry_the_same_error_fields(alice, alice_key, monkeypatch, error):
    def fail(**kwargs):
        raise error

    monkeypatch.setattr(linking, "pairing_code_request", fail)

    def over_rest() -> dict:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {alice_key}")
        response = client.post(
            "/api/v1/companies/alice/session/pairing-code/",
            {"phone_number": "+79001234567"},
            format="json",
        )
        assert response.status_code == error.http_status
        return response.json()

    from asgiref.sync import sync_to_async

    rest = await sync_to_async(over_rest)()
    socket = await connected("/ws/v1/companies/alice/", key=alice_key)
    await socket.send_json_to(
        {"type": "request_pairing_code", "phone_number": "+79001234567", "request_id": "r1"}
    )
    message = await receive_until(socket, "error")
    await socket.disconnect()

    assert rest.pop("success") is False
    assert message.pop("type") == "error"
    assert message.pop("request_id") == "r1"
    assert rest == message == errors.error_payload(error)
