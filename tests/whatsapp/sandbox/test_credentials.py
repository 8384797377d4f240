"""The sandbox's credentials store: per company, and a reset touches no other company."""

from __future__ import annotations

import pytest

from tests.whatsapp.sandbox.helpers import ALICE, BOB, CHARLIE
from whatsapp.sandbox.backend import SandboxBackend
from whatsapp.sandbox.models import Device

pytestmark = pytest.mark.django_db


@pytest.fixture
def stores() -> SandboxBackend:
    Device.objects.create(
        jid="79001234567:1@s.whatsapp.net", client_uuid=ALICE, phone="79001234567"
    )
    Device.objects.create(jid="79001234567:2@s.whatsapp.net", client_uuid=BOB, phone="79001234567")
    Device.objects.create(
        jid="14155552671:1@s.whatsapp.net", client_uuid=CHARLIE, phone="14155552671"
    )
    return SandboxBackend(speed=20)


def test_it_knows_which_company_has_credentials(stores):
    assert stores.credentials_exists(client_uuid=ALICE, device_jid=None)
    assert stores.credentials_exists(client_uuid=ALICE, device_jid="79001234567:1@s.whatsapp.net")
    # Bob's device is not Alice's, even though it is the same phone.
    assert not stores.credentials_exists(
        client_uuid=ALICE, device_jid="79001234567:2@s.whatsapp.net"
    )
    assert not stores.credentials_exists(client_uuid="nobody", device_jid=None)


def test_credentials_delete_touches_no_other_company(stores):
    assert stores.credentials_delete(client_uuid=ALICE, device_jid=None) == 1
    assert not stores.credentials_exists(client_uuid=ALICE, device_jid=None)
    assert sorted(Device.objects.values_list("client_uuid", flat=True)) == [BOB, CHARLIE]


def test_credentials_delete_of_another_companys_jid_deletes_nothing(stores):
    assert (
        stores.credentials_delete(client_uuid=ALICE, device_jid="14155552671:1@s.whatsapp.net") == 0
    )
    assert Device.objects.count() == 3
