"""Destination ranges: the unit whose conversion (verified / sent) the guard watches.

A range is country + operator + a block of consecutive numbers. The block is
what a carrier allocates and what a pumping operation rents (international
premium-rate providers sell blocks of numbers), so its size is what matters,
not the national destination code (NDC), whose length differs between plans:
`+243 812 345 678` has a 3-digit NDC (812, Vodacom), `+212 6 12 34 56 78` a
1-digit one (6). So the prefix is the national number without its last
`block_digits` digits (default 5: blocks of 100,000 numbers), and never shorter
than the NDC, so that a range never spans two destination codes. The operator
comes from `phonenumbers`' carrier metadata (by prefix; number portability
aside) and is kept for the logs: for the served countries from the generated
`operators` table (importing `phonenumbers.carrier` loads every country's,
~25 ms of a cold start), for any other from `phonenumbers.carrier` itself.
`phonenumbers` itself is imported on first use, as in `otplogin.phone`.
Real users who share a country and operator with a pumped block, but not the
block, are never in its range.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from msgspec import Struct

from otplogin.guard import operators

if TYPE_CHECKING:
    from phonenumbers import PhoneNumber


class NumberRange(Struct, frozen=True):
    id: str  # "CD-vodacom-8123": country, operator, national prefix (a block, never a full number)
    country: str
    operator: str  # "vodacom"; "unknown" when the metadata has none


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "unknown"


def number_range(e164: str, block_digits: int = 5) -> NumberRange:
    import phonenumbers

    number = phonenumbers.parse(e164, None)
    national = phonenumbers.national_significant_number(number)
    ndc = phonenumbers.length_of_national_destination_code(number)
    length = min(len(national), max(ndc, len(national) - block_digits, 1))
    prefix = national[:length]
    country = phonenumbers.region_code_for_number(number) or "ZZ"
    operator = _slug(operator_name(number))
    return NumberRange(id=f"{country}-{operator}-{prefix}", country=country, operator=operator)


def operator_name(number: PhoneNumber) -> str:
    """The operator the number's block was allocated to, "" when unknown: `carrier.name_for_number(number, "en")`."""
    import phonenumbers
    from phonenumbers import PhoneNumberType

    digits = f"{number.country_code}{phonenumbers.national_significant_number(number)}"
    if str(number.country_code) not in operators.CALLING_CODES:
        from phonenumbers import carrier  # every country's table: loaded only for a country outside the generated one

        return str(carrier.name_for_number(number, "en"))
    # The number types `carrier.name_for_number` names an operator for.
    if phonenumbers.number_type(number) not in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE,
                                                PhoneNumberType.PAGER):
        return ""
    for length in range(min(len(digits), operators.LONGEST_PREFIX), 0, -1):
        name = operators.OPERATORS.get(digits[:length])
        if name is not None:
            return name
    return ""
