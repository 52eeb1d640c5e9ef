"""Phone numbers: parsed and validated with `phonenumbers`, returned as E.164.

`phonenumbers` (~15 ms to import) is imported on first use: login needs it only
for a second factor and verify_otp only for a number not written as E.164;
send_otp loads it before the fork (`runtime.load_before_fork("phones")`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from otplogin.errors import CountryNotAllowed, InvalidPhone

if TYPE_CHECKING:
    import phonenumbers

MAX_INPUT_LENGTH = 32
_WRITTEN_AS_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


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


def written_as_e164(raw: str) -> str | None:
    """`raw` itself when it is spelled as E.164 (`+`, 7 to 15 digits), else None; no `phonenumbers`.

    Proves nothing about the number: verify uses it only to look a code up, and a code found
    there was stored by a send under the E.164 form of a valid number."""
    return raw if isinstance(raw, str) and _WRITTEN_AS_E164.fullmatch(raw) else None
