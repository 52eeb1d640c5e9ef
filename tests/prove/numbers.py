"""A corpus of phone numbers an SMS-pumping attacker would try, each with its category.

Built from `phonenumbers`' own metadata (example numbers of every region and
type, with the subscriber digits varied and re-checked), so categories are
what the numbering plans say, not guesses: mobiles in the allowed countries,
mobiles elsewhere, landlines, premium-rate, toll-free, shared-cost, VoIP,
UAN, pager, personal numbers, and invalid input of many shapes.
"""

from __future__ import annotations

import random
from collections import Counter

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

ALLOWED = frozenset({"CD", "MA"})
_TYPES = {
    "mobile": PhoneNumberType.MOBILE,
    "landline": PhoneNumberType.FIXED_LINE,
    "premium_rate": PhoneNumberType.PREMIUM_RATE,
    "toll_free": PhoneNumberType.TOLL_FREE,
    "shared_cost": PhoneNumberType.SHARED_COST,
    "voip": PhoneNumberType.VOIP,
    "uan": PhoneNumberType.UAN,
    "pager": PhoneNumberType.PAGER,
    "personal": PhoneNumberType.PERSONAL_NUMBER,
}
SENDABLE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


def e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def should_send(raw: str, allowed: frozenset[str] = ALLOWED) -> bool:
    """The oracle: a valid ASCII international number of a mobile type in an allowed country."""
    text = raw.strip()
    if not text.startswith("+") or not text.isascii() or len(text) > 32:
        return False
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return False
    return (
        phonenumbers.is_valid_number(number)
        and phonenumbers.number_type(number) in SENDABLE_TYPES
        and (phonenumbers.region_code_for_number(number) or "") in allowed
    )


def _variants(example: phonenumbers.PhoneNumber, want: PhoneNumberType, rng: random.Random, count: int) -> list[str]:
    """Up to `count` numbers of type `want` made by varying the example's last digits."""
    national = str(example.national_number)
    found: set[str] = set()
    tries = 0
    while len(found) < count and tries < count * 20:
        tries += 1
        keep = max(1, len(national) - rng.randint(2, 6))
        digits = national[:keep] + "".join(str(rng.randrange(10)) for _ in range(len(national) - keep))
        candidate = phonenumbers.PhoneNumber(country_code=example.country_code, national_number=int(digits))
        if phonenumbers.is_valid_number(candidate) and phonenumbers.number_type(candidate) == want:
            found.add(e164(candidate))
    return sorted(found)


def invalid_inputs(rng: random.Random, count: int) -> list[str]:
    shapes = [
        lambda: "+" + "".join(str(rng.randrange(10)) for _ in range(rng.randint(1, 6))),  # too short
        lambda: "+" + "".join(str(rng.randrange(10)) for _ in range(rng.randint(16, 31))),  # too long
        lambda: "".join(str(rng.randrange(10)) for _ in range(12)),  # no +
        lambda: "00243" + "".join(str(rng.randrange(10)) for _ in range(9)),  # 00 prefix
        lambda: "+243" + "".join(rng.choice("abcdef") for _ in range(9)),  # letters
        lambda: "+٢٤٣٨١٢٣٤٥٦٧٨",  # Arabic-Indic digits
        lambda: "+２４３８１２３４５６７８",  # full-width digits
        lambda: "+243 81\u00a0234 5678",  # no-break space
        lambda: "+0" + "".join(str(rng.randrange(10)) for _ in range(10)),  # country code 0
        lambda: "+999" + "".join(str(rng.randrange(10)) for _ in range(9)),  # unassigned code
        lambda: "+",
        lambda: " ",
        lambda: "+243-812-34",  # truncated
        lambda: "+24381234567\u0000",
        lambda: "tel:+243812345678",
    ]
    return [rng.choice(shapes)() for _ in range(count)]


def corpus(total: int, seed: int = 1, allowed_share: float = 0.4) -> list[tuple[str, str]]:
    """`total` (raw number, category) pairs, shuffled; about `allowed_share` are sendable mobiles."""
    rng = random.Random(seed)
    items: list[tuple[str, str]] = []
    want_allowed = int(total * allowed_share)
    per_allowed_region = want_allowed // len(ALLOWED) + 1
    for region in sorted(ALLOWED):
        example = phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
        items += [(n, "allowed_mobile") for n in _variants(example, PhoneNumberType.MOBILE, rng, per_allowed_region)]
    items = items[:want_allowed]
    rest = total - len(items)
    # The other categories, every region, then varied until there are enough.
    others: list[tuple[str, str]] = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for category, kind in _TYPES.items():
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            if category == "mobile":
                category = "allowed_mobile" if region in ALLOWED else "foreign_mobile"
                if region in ALLOWED:
                    continue
            for number in _variants(example, kind, rng, 3):
                # Regions share country codes (EH uses +212 like MA): the number's own region decides.
                own = phonenumbers.region_code_for_number(phonenumbers.parse(number, None))
                if category == "foreign_mobile" and own in ALLOWED:
                    continue
                others.append((number, category))
    rng.shuffle(others)
    n_invalid = max(1, rest // 5)
    items += others[: rest - n_invalid]
    items += [(raw, "invalid") for raw in invalid_inputs(rng, n_invalid)]
    rng.shuffle(items)
    return items[:total]


def describe(items: list[tuple[str, str]]) -> dict[str, int]:
    return dict(sorted(Counter(category for _, category in items).items()))


def mobiles(regions: frozenset[str], per_region: int, seed: int = 1) -> list[str]:
    """Valid mobile numbers (E.164) of `regions`, `per_region` each at most: example numbers, varied and re-checked."""
    rng = random.Random(seed)
    found: list[str] = []
    for region in sorted(regions):
        example = phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
        if example is None:
            continue
        own = [n for n in _variants(example, PhoneNumberType.MOBILE, rng, per_region)
               if phonenumbers.region_code_for_number(phonenumbers.parse(n, None)) == region]
        found += own
    return found
