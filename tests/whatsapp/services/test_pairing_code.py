"""pairing_code_request: the pairing-code rules of docs/design.md, "Linking rules", against the sandbox."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.helpers import ALICE_E164, OTHER_E164, link, session_of, wait_status
from whatsapp.backends import get_backend
from whatsapp.errors import (
    AlreadyConnected,
    CredentialsConflict,
    InvalidPhone,
    OperationTimeout,
    RateLimited,
    WorkerUnavailable,
)
from whatsapp.models import (
    AttemptMethod,
    AttemptOutcome,
    PairingAttempt,
    PhoneCooldown,
    SessionStatus,
)
from whatsapp.sandbox import phone
from whatsapp.sandbox.models import CodeRequest
from whatsapp.services import linking
from whatsapp.services.actors import SYSTEM, Actor

pytestmark = pytest.mark.django_db(transaction=True)

CODE_RE = re.compile(r"^[1-9A-HJ-NP-TV-Z]{4}-[1-9A-HJ-NP-TV-Z]{4}$")


def test_it_returns_a_code_in_whatsapps_format_valid_until_the_window_ends(alice, worker):
    code = linking.pairing_code_request(
        company=alice, phone_number="+7 (900) 123-45-67", actor=SYSTEM
    )
    session = session_of(alice)
    assert CODE_RE.match(code.pairing_code)
    assert code.phone_number == ALICE_E164
    assert session.status == SessionStatus.CODE_READY
    assert code.expires_at == session.window_expires_at  # the real end of the window
    assert 0 < code.expires_in <= 160 / 20
    attempt = PairingAttempt.objects.get(pk=code.attempt_id)
    assert (attempt.method, attempt.phone, attempt.reached_whatsapp) == ("code", ALICE_E164, True)


def test_a_repeat_for_the_same_phone_gets_the_same_code_without_asking_whatsapp(alice, worker):
    first = linking.pairing_code_request(company=alice, phone_number=ALICE_E164, actor=SYSTEM)
    again = linking.pairing_code_request(company=alice, phone_number="79001234567", actor=SYSTEM)
    assert (again.pairing_code, again.attempt_id, again.reused) == (
        first.pairing_code,
        first.attempt_id,
        True,
    )
    assert CodeRequest.objects.filter(phone=ALICE_E164[1:]).count() == 1


def test_twenty_concurrent_identical_requests_make_one_backend_request_and_one_code(alice, worker):
    results, failures = [], []

    def ask():
        try:
            results.append(
                linking.pairing_code_request(company=alice, phone_number=ALICE_E164, actor=SYSTEM)
            )
        except Exception as error:  # collected, so the assertion shows it
            failures.append(error)

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    assert len({result.pairing_code for result in results}) == 1 and len(results) == 20
    assert CodeRequest.objects.filter(phone=ALICE_E164[1:]).count() == 1
    assert PairingAttempt.objects.filter(company=alice, method="code").count() == 1


def test_a_request_for_another_phone_supersedes_the_attempt_and_only_the_latest_code_links(
    alice, worker
):
    first = linking.pairing_code_request(company=alice, phone_number=ALICE_E164, actor=SYSTEM)
    second = linking.pairing_code_request(company=alice, phone_number=OTHER_E164, actor=SYSTEM)
    assert second.attempt_id != first.attempt_id
    assert PairingAttempt.objects.get(pk=first.attempt_id).outcome == AttemptOutcome.SUPERSEDED
    with pytest.raises(phone.SandboxPhoneError):
        phone.link_with_code(ALICE_E164, first.pairing_code)
    phone.link_with_code(OTHER_E164, second.pairing_code)
    session = wait_status(alice, SessionStatus.CONNECTED)
    assert session.linked_phone == OTHER_E164
    assert PairingAttempt.objects.get(pk=second.attempt_id).outcome == AttemptOutcome.LINKED


def test_stale_credentials_of_another_phone_are_cleaned_and_pairing_proceeds(alice, worker):
    """The stale-credentials bug: stored credentials for phone A, a code requested for phone B."""
    link(alice, ALICE_E164)
    session = session_of(alice)
    old_jid = session.linked_jid
    # The link goes stale: the company is no longer live (e.g. a failure stopped it).
    linking._stop_client(session)
    session.refresh_from_db()
    linking.session_write(session, status=SessionStatus.FAILED)

    code = linking.pairing_code_request(company=alice, phone_number=OTHER_E164, actor=SYSTEM)

    assert not get_backend().credentials_exists(
        client_uuid=str(session.client_uuid), device_jid=old_jid
    )
    audit = PairingAttempt.objects.get(company=alice, method=AttemptMethod.RESET)
    assert audit.outcome == AttemptOutcome.CLEARED and audit.phone == ALICE_E164
    assert "stale credentials" in audit.note
    phone.link_with_code(OTHER_E164, code.pairing_code)
    assert wait_status(alice, SessionStatus.CONNECTED).linked_phone == OTHER_E164


def test_live_credentials_of_another_phone_conflict_with_the_phone_masked(alice, worker):
    link(alice, ALICE_E164)
    with pytest.raises(CredentialsConflict) as error:
        linking.pairing_code_request(company=alice, phone_number=OTHER_E164, actor=SYSTEM)
    assert error.value.details == {"stored_phone": "+7900***4567"}
    assert ALICE_E164 not in error.value.message
    assert session_of(alice).status == SessionStatus.CONNECTED  # nothing was touched


def test_replace_existing_replaces_a_live_link_of_another_phone(alice, worker):
    link(alice, ALICE_E164)
    code = linking.pairing_code_request(
        company=alice, phone_number=OTHER_E164, actor=SYSTEM, replace_existing=True
    )
    assert PairingAttempt.objects.filter(company=alice, method=AttemptMethod.RESET).count() == 1
    phone.link_with_code(OTHER_E164, code.pairing_code)
    assert wait_status(alice, SessionStatus.CONNECTED).linked_phone == OTHER_E164


def test_the_connected_phone_itself_is_already_connected(alice, worker):
    link(alice, ALICE_E164)
    with pytest.raises(AlreadyConnected):
        linking.pairing_code_request(
            company=alice, phone_number="+7 900 123 45 67", actor=SYSTEM, replace_existing=True
        )


def test_the_cap_counts_only_requests_that_reached_whatsapp(alice, bob, charlie, worker, settings):
    settings.WHATSAPP_PAIRING_CODE_CAP = 2
    linking.pairing_code_request(company=alice, phone_number=ALICE_E164, actor=SYSTEM)
    linking.pairing_code_request(company=bob, phone_number=ALICE_E164, actor=SYSTEM)
    with pytest.raises(RateLimited) as error:
        linking.pairing_code_request(company=charlie, phone_number=ALICE_E164, actor=SYSTEM)
    assert error.value.retry_after is not None
    assert 0 < error.value.retry_after <= settings.WHATSAPP_PAIRING_CODE_CAP_WINDOW
    assert error.value.details["reason"] == "pairing_code_cap"
    # Another phone is not affected.
    linking.pairing_code_request(company=charlie, phone_number=OTHER_E164, actor=SYSTEM)


def test_whatsapps_429_cools_the_phone_down_for_every_request(alice, bob, worker):
    limited = "+79001230429"
    with pytest.raises(RateLimited) as error:
        linking.pairing_code_request(company=alice, phone_number=limited, actor=SYSTEM)
    assert error.value.retry_after == 7200
    cooldown = PhoneCooldown.objects.get(phone=limited)
    assert cooldown.until > timezone.now() + timedelta(seconds=7000)
    session = session_of(alice)
    assert (session.status, session.last_error_code) == (SessionStatus.DISCONNECTED, "RATE_LIMITED")
    requests_before = CodeRequest.objects.count()
    with pytest.raises(RateLimited) as again:
        linking.pairing_code_request(company=bob, phone_number=limited, actor=SYSTEM)
    assert again.value.retry_after is not None
    assert 7000 < again.value.retry_after <= 7200
    assert CodeRequest.objects.count() == requests_before  # never reached WhatsApp


def test_a_number_whatsapp_rejects_is_an_invalid_phone_and_the_attempt_fails(alice, worker):
    with pytest.raises(InvalidPhone) as error:
        linking.pairing_code_request(company=alice, phone_number="+79001230000", actor=SYSTEM)
    assert "not on WhatsApp" in error.value.message
    assert error.value.details["reason"] == "not_on_whatsapp"
    attempt = PairingAttempt.objects.get(company=alice)
    assert (attempt.outcome, attempt.error_code) == (AttemptOutcome.FAILED, "INVALID_PHONE")


def test_an_invalid_number_never_reaches_the_worker(alice):
    with pytest.raises(InvalidPhone):
        linking.pairing_code_request(company=alice, phone_number="12345", actor=SYSTEM)
    assert not PairingAttempt.objects.exists()


def test_a_timeout_is_bounded_and_releases_the_lock(alice, worker, settings):
    settings.WHATSAPP_OPERATION_TIMEOUT = 1.0
    with pytest.raises(OperationTimeout):
        linking.pairing_code_request(company=alice, phone_number="+79001230075", actor=SYSTEM)
    assert session_of(alice).lock_token == ""
    settings.WHATSAPP_OPERATION_TIMEOUT = 10.0
    code = linking.pairing_code_request(company=alice, phone_number=ALICE_E164, actor=SYSTEM)
    assert CODE_RE.match(code.pairing_code)


def test_a_held_lock_makes_a_second_operation_time_out_not_hang(alice, worker, settings):
    from whatsapp.services.locks import company_lock, deadline_in

    settings.WHATSAPP_OPERATION_TIMEOUT = 0.5
    with company_lock(session_id=session_of(alice).pk, deadline=deadline_in()):
        with pytest.raises(OperationTimeout):
            linking.pairing_code_request(company=alice, phone_number=ALICE_E164, actor=SYSTEM)
    assert session_of(alice).lock_token == ""


def test_without_a_worker_it_says_worker_unavailable_and_records_it(alice):
    with pytest.raises(WorkerUnavailable):
        linking.pairing_code_request(
            company=alice, phone_number=ALICE_E164, actor=Actor(kind="user", label="user:staff")
        )
    attempt = PairingAttempt.objects.get(company=alice)
    assert (attempt.outcome, attempt.error_code, attempt.started_by) == (
        AttemptOutcome.FAILED,
        "WORKER_UNAVAILABLE",
        "user:staff",
    )
    session = session_of(alice)
    assert session.last_error_code == "WORKER_UNAVAILABLE" and session.lock_token == ""
