"""Formats the sandbox shares with real WhatsApp: pairing codes, QR strings, phone numbers."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whatsapp.sandbox import rules

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"
CODE = re.compile(rf"^[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}$")


@settings(deadline=None)  # timing is not the property; a loaded CI box must not fail it
@given(st.randoms(use_true_random=False))
def test_pairing_codes_use_whatsapps_alphabet_and_format(rng):
    code = rules.pairing_code_new(rng)
    assert CODE.match(code)
    assert not set(code) & set("0IOU")  # the letters WhatsApp leaves out


@given(st.text(alphabet=ALPHABET, min_size=8, max_size=8), st.sampled_from(["", "-", " "]))
def test_a_code_typed_any_way_normalises_to_the_shown_form(raw, separator):
    typed = (raw[:4] + separator + raw[4:]).lower()
    assert rules.pairing_code_normalised(typed) == f"{raw[:4]}-{raw[4:]}"


@pytest.mark.parametrize("typed", ["ABCD-EFG", "ABCD-EFGH1", "ABCD-EFG0", "OOOO-OOOO", ""])
def test_it_rejects_what_cannot_be_a_code(typed):
    assert rules.pairing_code_normalised(typed) is None


def test_qr_strings_look_like_the_real_ones():
    ref = rules.qr_ref_new()
    qr = rules.qr_new(ref, noise_public=b"n" * 32, identity_public=b"i" * 32, adv_secret=b"a" * 32)
    assert qr.startswith("https://wa.me/settings/linked_devices#2@")
    parts = qr.removeprefix(rules.QR_PREFIX).split(",")
    assert len(parts) == 5 and parts[0] == ref and len(parts[1]) == 44
    assert rules.qr_ref(qr) == ref


@pytest.mark.parametrize(
    "typed", ["+7 (900) 123-45-67", "79001234567", "+7 900 123 45 67", "0079001234567"]
)
def test_it_accepts_phone_numbers_in_any_common_form(typed):
    assert rules.phone_digits(typed) == "79001234567"


@pytest.mark.parametrize("typed", ["", "hello", "+7 900", "+999 123456"])
def test_it_rejects_what_is_not_an_international_number(typed):
    with pytest.raises(ValueError):
        rules.phone_digits(typed)


def test_magic_numbers_go_by_the_last_four_digits():
    assert rules.magic("79001230429") == rules.RATE_OVERLIMIT
    assert rules.magic("79001234567") == ""
