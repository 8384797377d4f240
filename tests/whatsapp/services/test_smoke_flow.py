import time

import pytest

from whatsapp.models import SessionStatus, WhatsAppSession
from whatsapp.sandbox import phone
from whatsapp.services import linking
from whatsapp.services.actors import SYSTEM


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


@pytest.mark.django_db(transaction=True)
def test_code_flow_links(alice, worker):
    code = linking.pairing_code_request(company=alice, phone_number="+7 900 123-45-67", actor=SYSTEM)
    assert len(code.pairing_code) == 9
    phone.link_with_code("+79001234567", code.pairing_code)
    session = wait_for(lambda: WhatsAppSession.objects.filter(company=alice, status=SessionStatus.CONNECTED).first())
    assert session.linked_phone == "+79001234567"
