"""`manage.py pair`: link a company from a terminal."""

from __future__ import annotations

import io
import threading

import pytest
from django.core.management import CommandError, call_command

from tests.helpers import wait_for
from whatsapp.sandbox import phone

pytestmark = pytest.mark.django_db(transaction=True)


def run_pair(*args) -> tuple[threading.Thread, io.StringIO, list]:
    out, errors = io.StringIO(), []

    def target():
        try:
            call_command("pair", *args, stdout=out)
        except Exception as error:  # surfaced to the test
            errors.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, out, errors


def test_it_prints_the_code_and_waits_until_connected(alice):
    thread, out, errors = run_pair("alice", "--phone", "+79001234567", "--wait", "20")
    code = wait_for(
        lambda: next((w.pairing_code for w in phone.open_windows() if w.pairing_code), None),
        what="a pairing code",
    )
    assert code in wait_for(out.getvalue, what="output")
    phone.link_with_code("+79001234567", code)
    thread.join(25)
    assert errors == []
    assert "Connected as +79001234567" in out.getvalue()


def test_it_prints_the_qr_in_the_terminal(alice):
    thread, out, errors = run_pair("alice", "--wait", "20")
    window = wait_for(lambda: next((w for w in phone.open_windows() if w.qr), None), what="a QR")
    wait_for(lambda: "Scan with WhatsApp" in out.getvalue(), what="the QR printed")
    phone.link_with_qr("+14155552671", window.qr)
    thread.join(25)
    assert errors == [] and "Connected as +14155552671" in out.getvalue()


def test_it_fails_clearly(alice):
    with pytest.raises(CommandError, match="No company"):
        call_command("pair", "nobody")
    with pytest.raises(CommandError, match="INVALID_PHONE"):
        call_command("pair", "alice", "--phone", "123")
