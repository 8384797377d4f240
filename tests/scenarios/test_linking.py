"""Linking scenarios (docs/design.md, "Linking rules"), each run against the sandbox and against
the real neonize on the WhatsApp emulator: through the linking services and the worker, as the
API, the pages and the console drive them.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.helpers import ALICE_E164, OTHER_E164, figure, session_of, wait_for, wait_status
from tests.scenarios.worlds import NOT_ON_WHATSAPP, EmulatorWorld, World
from whatsapp import errors
from whatsapp.backends import get_backend
from whatsapp.models import AttemptOutcome, PairingAttempt, SessionStatus
from whatsapp.services import linking
from whatsapp.services.actors import SYSTEM
from whatsapp.worker.inprocess import ThreadedWorker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# A linking host of the real library takes a second or two to start; the window itself is 8 s.
WITHIN = 30.0


def shown_qr(company: Any) -> str:
    linking.session_start(company=company, actor=SYSTEM)
    session = wait_status(company, SessionStatus.QR_READY, timeout=WITHIN)
    return str(session.qr_code)


def link_by_qr(world: World, company: Any, phone: str = ALICE_E164) -> Any:
    world.scan(phone, shown_qr(company))
    return wait_status(company, SessionStatus.CONNECTED, timeout=WITHIN)


def link_by_code(world: World, company: Any, phone: str = ALICE_E164) -> Any:
    code = linking.pairing_code_request(company=company, phone_number=phone, actor=SYSTEM)
    world.enter_code(phone, code.pairing_code)
    return wait_status(company, SessionStatus.CONNECTED, timeout=WITHIN)


def in_store(session: Any) -> bool:
    return get_backend().credentials_exists(
        client_uuid=str(session.client_uuid), device_jid=session.linked_jid or None
    )


def test_a_phone_links_by_qr(world: World, running: ThreadedWorker, alice: Any) -> None:
    session = link_by_qr(world, alice)

    assert session.linked_phone == ALICE_E164
    assert session.linked_jid.startswith("79001234567:")
    assert in_store(session)
    assert world.devices(ALICE_E164) == [session.linked_jid]
    attempt = PairingAttempt.objects.get(company=alice)
    assert (attempt.method, attempt.outcome) == ("qr", AttemptOutcome.LINKED)


def test_a_phone_links_by_code(world: World, running: ThreadedWorker, alice: Any) -> None:
    session = link_by_code(world, alice)

    assert (session.linked_phone, session.has_credentials) == (ALICE_E164, True)
    assert in_store(session)
    if isinstance(world, EmulatorWorld):
        # The phone lists our device name; the code's display name stays a real browser's.
        assert world.device_names() == ["Pairing Service"]
        assert world.code_display_names() == ["Chrome (Linux)"]


def test_a_company_whose_window_expired_links_on_its_second_attempt(
    world: World, running: ThreadedWorker, alice: Any
) -> None:
    linking.session_start(company=alice, actor=SYSTEM)
    expired = wait_status(alice, SessionStatus.DISCONNECTED, timeout=WITHIN)
    assert expired.last_error_code == errors.PAIRING_EXPIRED

    session = link_by_qr(world, alice)

    assert session.status == SessionStatus.CONNECTED
    outcomes = list(
        PairingAttempt.objects.filter(company=alice)
        .order_by("id")
        .values_list("outcome", flat=True)
    )
    assert outcomes == [AttemptOutcome.EXPIRED, AttemptOutcome.LINKED]


def test_a_failed_code_request_then_a_retry_that_links(
    world: World, running: ThreadedWorker, alice: Any
) -> None:
    with pytest.raises(errors.InvalidPhone) as refused:
        linking.pairing_code_request(company=alice, phone_number=NOT_ON_WHATSAPP, actor=SYSTEM)
    assert refused.value.details["reason"] == "not_on_whatsapp"

    session = link_by_code(world, alice)

    assert session.linked_phone == ALICE_E164


def test_client_outdated_during_linking_shows_at_once(
    world: World, running: ThreadedWorker, alice: Any
) -> None:
    world.refuse_next_login_as_outdated()
    started = time.monotonic()

    linking.session_start(company=alice, actor=SYSTEM)
    session = wait_status(alice, SessionStatus.FAILED, timeout=WITHIN)

    seconds = time.monotonic() - started
    figure(f"[{world.name}] CLIENT_OUTDATED {seconds:.1f} s after the start")
    assert session.last_error_code == errors.CLIENT_OUTDATED
    assert seconds < 5


def test_a_temporary_ban_fails_the_session(
    world: World, running: ThreadedWorker, alice: Any
) -> None:
    link_by_qr(world, alice)

    world.ban(ALICE_E164, seconds=3600)

    session = wait_status(alice, SessionStatus.FAILED, timeout=WITHIN)
    assert session.last_error_code == errors.TEMPORARILY_BANNED
    assert session.has_credentials  # kept: the link works again once the ban is over


def test_logout_from_the_phone_removes_the_credentials(
    world: World, running: ThreadedWorker, alice: Any
) -> None:
    linked = link_by_code(world, alice)

    world.unlink(ALICE_E164)

    session = wait_status(alice, SessionStatus.LOGGED_OUT, timeout=WITHIN)
    assert session.last_error_code == errors.LOGGED_OUT
    assert (session.has_credentials, session.linked_jid) == (False, "")
    assert not get_backend().credentials_exists(
        client_uuid=str(session.client_uuid), device_jid=linked.linked_jid
    )


def test_another_connection_with_the_same_keys_replaces_the_stream(
    world: World, running: ThreadedWorker, alice: Any
) -> None:
    link_by_qr(world, alice)

    world.take_over(ALICE_E164)

    session = wait_status(alice, SessionStatus.FAILED, timeout=WITHIN)
    assert session.last_error_code == errors.STREAM_REPLACED


def test_a_dropped_socket_reconnects_by_itself(
    world: World, running: ThreadedWorker, alice: Any
) -> None:
    linked = link_by_qr(world, alice)
    before = wait_for(lambda: world.live_connection(ALICE_E164), what="online")

    world.drop(ALICE_E164)

    # whatsmeow reconnects within milliseconds on the emulator, so the status may never be seen
    # leaving "connected": the new connection is the proof.
    wait_for(
        lambda: world.live_connection(ALICE_E164) not in (None, before) or None,
        timeout=WITHIN,
        what="a new connection of the same device",
    )
    session = wait_status(alice, SessionStatus.CONNECTED, timeout=WITHIN)
    assert session.linked_jid == linked.linked_jid
    assert world.devices(ALICE_E164) == [linked.linked_jid]


def test_a_restarted_worker_resumes_the_link_from_the_store(
    world: World, running: ThreadedWorker, alice: Any
) -> None:
    linked = link_by_code(world, alice)
    running.stop(timeout=60)
    assert session_of(alice).status == SessionStatus.RECONNECTING

    again = ThreadedWorker()
    again.start(timeout=60)
    try:
        session = wait_status(alice, SessionStatus.CONNECTED, timeout=WITHIN)
    finally:
        again.stop(timeout=60)
    assert session.linked_jid == linked.linked_jid
    assert PairingAttempt.objects.filter(company=alice).count() == 1  # no new linking


def test_a_reset_deletes_the_store_and_the_phone_sees_the_device_gone(
    world: World, running: ThreadedWorker, alice: Any
) -> None:
    linked = link_by_qr(world, alice)
    assert world.devices(ALICE_E164) == [linked.linked_jid]

    linking.credentials_reset(company=alice, actor=SYSTEM)

    session = session_of(alice)
    assert (session.status, session.has_credentials) == (SessionStatus.DISCONNECTED, False)
    assert not get_backend().credentials_exists(
        client_uuid=str(session.client_uuid), device_jid=linked.linked_jid
    )
    wait_for(lambda: world.devices(ALICE_E164) == [], timeout=WITHIN, what="the device gone")


def test_a_passkey_request_ends_the_attempt_with_a_reason(
    world: World, running: ThreadedWorker, alice: Any
) -> None:
    world.arm_passkey()
    linking.session_start(company=alice, actor=SYSTEM)
    wait_for(
        lambda: session_of(alice).status != SessionStatus.CONNECTING or None,
        timeout=WITHIN,
        what="the login window",
    )

    world.trigger_passkey()

    session = wait_status(alice, SessionStatus.DISCONNECTED, timeout=WITHIN)
    assert session.last_error_code == errors.PASSKEY_REQUIRED
    attempt = PairingAttempt.objects.get(company=alice)
    assert (attempt.outcome, attempt.error_code) == (AttemptOutcome.FAILED, "PASSKEY_REQUIRED")


def test_two_companies_link_two_phones_side_by_side(
    world: World, running: ThreadedWorker, alice: Any, bob: Any
) -> None:
    alice_session = link_by_qr(world, alice, ALICE_E164)
    bob_session = link_by_code(world, bob, OTHER_E164)

    assert alice_session.linked_jid != bob_session.linked_jid
    assert session_of(alice).status == SessionStatus.CONNECTED
    assert world.devices(OTHER_E164) == [bob_session.linked_jid]
