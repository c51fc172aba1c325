"""Vietnamese mobile numbers: remap the pre-2018 11-digit forms, validate with `phonenumbers`,
and return E.164 (`+84` and 9 digits)."""
from __future__ import annotations

import re

import phonenumbers

# 2018 conversion: the old 4-digit prefix (after the leading 0) became a 3-digit one, last 7 digits kept.
OLD_PREFIXES: dict[str, str] = {
    **{f"016{d}": f"03{d}" for d in "23456789"},  # Viettel 0162..0169 -> 032..039
    "0120": "070", "0121": "079", "0122": "077", "0126": "076", "0128": "078",  # MobiFone
    "0123": "083", "0124": "084", "0125": "085", "0127": "081", "0129": "082",  # VinaPhone
    "0186": "056", "0188": "058",  # Vietnamobile
    "0199": "059",  # Gmobile
}
_SEPARATORS = re.compile(r"[\s.\-()/]")


class InvalidPhone(ValueError):
    """Not a Vietnamese mobile number; the message says why, for staff and logs."""


def normalise_vn_mobile(raw: str) -> str:
    """Return `+84xxxxxxxxx` for a Vietnamese mobile number, or raise InvalidPhone."""
    if raw is None or not str(raw).strip():
        raise InvalidPhone("no phone number")
    text = _SEPARATORS.sub("", str(raw).strip())
    if text.startswith("00"):
        text = "+" + text[2:]
    if text.startswith("+84"):
        national = "0" + text[3:]
    elif text.startswith("84") and len(text) in (11, 12):
        national = "0" + text[2:]
    elif text.startswith("+"):
        raise InvalidPhone(f"not a Vietnamese number: {raw!r}")
    else:
        national = text
    if not national.isdigit():
        raise InvalidPhone(f"contains characters other than digits: {raw!r}")
    if len(national) == 11 and national[:4] in OLD_PREFIXES:
        national = OLD_PREFIXES[national[:4]] + national[4:]
    elif len(national) == 11:
        raise InvalidPhone(f"11-digit number with an unknown old prefix {national[:4]}: {raw!r}")
    if len(national) != 10:
        raise InvalidPhone(f"a mobile number has 10 digits (0 + 9): {raw!r}")
    try:
        parsed = phonenumbers.parse(national, "VN")
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"cannot read {raw!r}: {exc}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhone(f"not a valid Vietnamese number: {raw!r}")
    kind = phonenumbers.number_type(parsed)
    if kind not in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
        raise InvalidPhone(f"not a mobile number (cannot receive SMS): {raw!r}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def mask(e164_or_raw: str) -> str:
    """For public screens: keep the last three digits only (09x xxx x678 -> ******678)."""
    digits = re.sub(r"\D", "", e164_or_raw or "")
    return ("*" * max(0, len(digits) - 3) + digits[-3:]) if digits else ""
