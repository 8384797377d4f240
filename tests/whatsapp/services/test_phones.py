import pytest
from hypothesis import given
from hypothesis import strategies as st

from whatsapp.errors import InvalidPhone
from whatsapp.services.phones import phone_digits, phone_parse


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+7 (900) 123-45-67", "+79001234567"),
        ("79001234567", "+79001234567"),
        ("+1 415 555 2671", "+14155552671"),
        ("0044 7911 123456", "+447911123456"),
        ("+44 7911 123456", "+447911123456"),
        (79001234567, "+79001234567"),
    ],
)
def test_it_accepts_common_international_forms(raw, e164):
    assert phone_parse(raw) == e164
    assert phone_digits(phone_parse(raw)) == e164[1:]


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("89001234567", "national number"),
        ("8 900 123 45 67", "national number"),
        ("+999 1234567", "known country code"),
        ("07911 123456", "national number"),
        ("+1 415", "too short"),
        ("", "empty"),
        ("+7 900 123 45 67 89", "length"),
        ("+1 555 555 5555", "no such number"),
        ("call me", "only digits"),
        (None, "must be a string"),
        (True, "must be a string"),
    ],
)
def test_it_rejects_national_or_impossible_numbers_saying_why(raw, says):
    with pytest.raises(InvalidPhone) as error:
        phone_parse(raw)
    assert says in error.value.message
    assert error.value.code == "INVALID_PHONE"


@given(st.text(max_size=30))
def test_any_input_is_either_e164_or_invalid_phone(text):
    try:
        result = phone_parse(text)
    except InvalidPhone:
        return
    assert result.startswith("+") and result[1:].isdigit()
