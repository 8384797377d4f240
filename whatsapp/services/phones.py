"""Phone numbers: any common international form in, E.164 out, digits to WhatsApp."""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, ValidationResult

from whatsapp.errors import InvalidPhone

_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: "its country code does not exist",
    ValidationResult.TOO_SHORT: "it is too short for its country",
    ValidationResult.TOO_LONG: "it is too long for its country",
    ValidationResult.INVALID_LENGTH: "its length is not valid for its country",
}


def phone_parse(raw: object) -> str:
    """Return the E.164 form of `raw`, or raise InvalidPhone saying what is wrong."""
    if not isinstance(raw, str | int) or isinstance(raw, bool):
        raise InvalidPhone("The phone number must be a string such as +79001234567.")
    text = str(raw).strip()
    if not text:
        raise InvalidPhone("The phone number is empty.")
    if len(text) > 40 or re.search(r"[^\d\s+()\-.]", text):
        raise InvalidPhone("The phone number may contain only digits, spaces, +, -, ( and ).")
    digits = re.sub(r"\D", "", text)
    if text.startswith("00"):
        digits = digits[2:]
    elif not text.startswith("+") and digits.startswith("0"):
        raise InvalidPhone(
            "This looks like a national number (it starts with 0). Enter it in international "
            "form with the country code, e.g. +44 7911 123456."
        )
    if len(digits) < 7:
        raise InvalidPhone("The phone number is too short; include the country code.")
    try:
        number = phonenumbers.parse("+" + digits, None)
    except NumberParseException as error:
        if error.error_type == NumberParseException.INVALID_COUNTRY_CODE and not text.startswith(
            "+"
        ):
            raise InvalidPhone(
                "This looks like a national number (no valid country code in front). Enter it in "
                "international form with the country code, e.g. +7 900 123-45-67."
            ) from None
        if error.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            raise InvalidPhone(
                "The phone number does not start with a known country code. Enter it in "
                "international form, e.g. +7 900 123-45-67."
            ) from None
        raise InvalidPhone(
            "The phone number could not be read as an international number."
        ) from None
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != ValidationResult.IS_POSSIBLE:
        raise InvalidPhone(
            f"The phone number is not valid: {_REASONS.get(reason, 'it is impossible')}."
        )
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(
            "The phone number is not valid: no such number exists in its country. Check the "
            "country code and the digits."
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_digits(e164: str) -> str:
    return e164.lstrip("+")


def phone_region_hint(e164: str) -> str:
    number = phonenumbers.parse(e164, None)
    return phonenumbers.region_code_for_number(number) or ""
