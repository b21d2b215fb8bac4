"""Mobile numbers: normalised to E.164 for sending, masked for anything a person reads."""

from __future__ import annotations

import re

import phonenumbers

# Numbers without a country code are Chinese mobiles (what applicants type on the form).
DEFAULT_REGION = "CN"

# Seven or more digits standing alone could be a phone or ID number; provider error texts are
# scrubbed of them before they reach the outbox, logs or Temporal history. Digits inside a
# longer token (request IDs, hex) are left alone.
_LONG_DIGITS = re.compile(r"(?<![0-9A-Za-z])\+?\d{7,}[Xx]?(?![0-9A-Za-z])")


class InvalidPhoneNumber(ValueError):
    """A stored number that cannot receive an SMS (the message never says which number)."""


def to_e164(raw: str) -> str:
    """``raw`` as an E.164 number (``+8613812341234``).

    Raises:
        InvalidPhoneNumber: ``raw`` is not a valid mobile or fixed-line number.
    """
    try:
        parsed = phonenumbers.parse(raw, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise InvalidPhoneNumber("not a phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber("not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(phone: str) -> str:
    """``phone`` with the middle digits hidden: ``+8613812341234`` → ``+86138****1234``."""
    try:
        parsed = phonenumbers.parse(phone, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return "****"
    national = str(parsed.national_number)
    if len(national) >= 11:  # mainland mobiles: the usual 3 + **** + 4
        return f"+{parsed.country_code}{national[:3]}{'*' * (len(national) - 7)}{national[-4:]}"
    # Shorter numbers would be nearly whole with 3 + 4 shown: show the last two digits only.
    return f"+{parsed.country_code}{'*' * (len(national) - 2)}{national[-2:]}"


def scrub(text: str) -> str:
    """``text`` with every run of seven or more digits masked (provider errors may echo them)."""
    return _LONG_DIGITS.sub(lambda m: m.group()[:3] + "****" + m.group()[-2:], text)


__all__ = ["InvalidPhoneNumber", "mask_phone", "scrub", "to_e164"]
