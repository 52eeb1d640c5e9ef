"""Phone numbers: parsed and validated with `phonenumbers`, returned as E.164.

`phonenumbers` (~15 ms to import) is imported on first use: login needs it only
for a second factor, and send_otp and verify_otp load it before the fork
(`runtime.load_before_fork("phones")`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from otplogin.errors import CountryNotAllowed, InvalidPhone

if TYPE_CHECKING:
    import phonenumbers

MAX_INPUT_LENGTH = 32


def parse_e164(raw: str) -> phonenumbers.PhoneNumber:
    """Accept a number in international form (`+`, spaces and dashes allowed)."""
    import phonenumbers

    text = raw.strip()
    if not text.startswith("+") or len(text) > MAX_INPUT_LENGTH or not text.isascii():
        raise InvalidPhone("Give the phone number in international form, like +243812345678.")
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise InvalidPhone() from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone()
    return number


def validate_for_delivery(raw: str, allowed_countries: frozenset[str]) -> tuple[str, str]:
    """Return (E.164, ISO country) for a mobile number in an allowed country."""
    import phonenumbers
    from phonenumbers import PhoneNumberType

    number = parse_e164(raw)
    country = phonenumbers.region_code_for_number(number) or ""
    # FIXED_LINE_OR_MOBILE: some countries' plans cannot tell the two apart.
    if phonenumbers.number_type(number) not in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        raise InvalidPhone("This number cannot receive text messages: give a mobile number.")
    if country not in allowed_countries:
        raise CountryNotAllowed(country=country)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), country


def normalize(raw: str) -> str:
    """E.164 form of any valid number (verify does not re-check delivery rules)."""
    import phonenumbers

    return phonenumbers.format_number(parse_e164(raw), phonenumbers.PhoneNumberFormat.E164)
