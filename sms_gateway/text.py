"""A notice's text: template, NFC, encoding policy and part count.

Gammu left to itself encodes Vietnamese as GSM-7 and half-strips the marks (DOMAIN.md). We decide
before Gammu sees the text: either full Vietnamese in UCS-2, or a clean fold to plain ASCII, which
is always inside the GSM-7 alphabet. Either way the text stored in the outbox is exactly what the
phone will show, and the stored part count is what the operator will bill.
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any, Mapping

from motcua import hours
from motcua.config import Config
from motcua.textnorm import clean_text

GSM7 = "gsm7"
UCS2 = "ucs2"

# GSM 03.38 default alphabet and its extension table (extension characters take two septets).
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXT = set("^{}\\[~]|€\f")
# Typography a template or a procedure name may carry, spelled in plain ASCII.
_ASCII_SUBST = {
    "đ": "d", "Đ": "D", "“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "–": "-", "—": "-",
    "…": "...", "•": "-", "\u00a0": " ", "\t": " ", "×": "x", "№": "No", "`": "'",
}
# Plain ASCII that fold() leaves as it is, and plain ASCII inside the GSM-7 alphabet (fast paths: the
# gateway renders every notice, the "shorten to fit" search up to 7 times).
_ASCII_FOLDED = re.compile(r"[\n\x20-\x5f\x61-\x7e]*")  # the backtick folds to an apostrophe
_ASCII_GSM = re.compile(r"[\n\r\f\x20-\x5f\x61-\x7e]*")  # printable ASCII but the backtick
_ASCII_GSM_EXT = "^{}\\[~]|\f"
_EMPTY_PARENS = re.compile(r"\s*\(\s*\)")
_SPACES = re.compile(r"[ ]{2,}")


@dataclass(frozen=True)
class Rendered:
    text: str
    encoding: str  # "gsm7" or "ucs2"
    parts: int


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    if unicodedata.category(ch) == "Mn":
        return ""
    ch = _ASCII_SUBST.get(ch, ch)
    return ch if all(32 <= ord(c) < 127 or c == "\n" for c in ch) else "?"


def fold(text: str) -> str:
    """Plain-ASCII Vietnamese: marks dropped, đ/Đ to d/D; anything else outside ASCII becomes '?'."""
    if _ASCII_FOLDED.fullmatch(text):
        return text
    return "".join(map(_fold_char, unicodedata.normalize("NFD", text)))


def septets(text: str) -> int | None:
    """Length in GSM-7 septets, or None when the text is not GSM-7."""
    if _ASCII_GSM.fullmatch(text):
        return len(text) + sum(map(text.count, _ASCII_GSM_EXT))
    n = 0
    for ch in text:
        if ch in _GSM_BASIC:
            n += 1
        elif ch in _GSM_EXT:
            n += 2
        else:
            return None
    return n


def count_parts(text: str, encoding: str) -> int:
    """Parts the network bills: GSM-7 160 (153 per part), UCS-2 70 (67 per part)."""
    if encoding == GSM7:
        n = septets(text)
        if n is None:
            raise ValueError("text is not in the GSM-7 alphabet")
        single, multi = 160, 153
    else:
        n = len(text.encode("utf-16-le")) // 2
        single, multi = 70, 67
    if n <= single:
        return 1
    return math.ceil(n / multi)


def prepare(text: str, policy: str) -> Rendered:
    """Apply the encoding policy ("ascii" fold or "ucs2") to already-rendered text."""
    text = unicodedata.normalize("NFC", text).strip()
    if policy == "ascii":
        text = fold(text)
        return Rendered(text, GSM7, count_parts(text, GSM7))
    if policy == "ucs2":
        # Pure-GSM text (no Vietnamese marks) still goes as UCS-2: the policy is explicit.
        return Rendered(text, UCS2, count_parts(text, UCS2))
    raise ValueError(f"unknown encoding policy {policy!r}")


def _format_date(value: Any) -> str:
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return date.fromisoformat(value).strftime("%d/%m/%Y")
    return str(value or "")


@lru_cache(maxsize=1024)
def _fold_nfc(text: str) -> str:
    """NFC then fold; cached because the template, commune, place, hours and most procedure names
    repeat from one notice to the next."""
    return fold(unicodedata.normalize("NFC", text))


def _fill(template: str, values: Mapping[str, str]) -> str:
    text = template.format(**values)
    return _SPACES.sub(" ", _EMPTY_PARENS.sub("", text))


def _shorten(words: str, limit: int, ellipsis: str) -> str:
    if len(words) <= limit:
        return words
    cut = words[: max(0, limit - len(ellipsis))].rstrip()
    if " " in cut and len(cut) > 12:
        cut = cut[: cut.rfind(" ")].rstrip(" ,;:-")
    return (cut + ellipsis) if cut else ""


# Data from a dossier (or a request) placed in a template: what the commune's own settings say is
# trusted, data is not. A procedure name with a newline and a URL once went out as "... BAM
# http://evil.example/pay ..." (issue 17): data is one line, capped, and carries no link.
DATA_LIMITS = {"code": 64, "procedure": 200, "date": 20, "text": 320}
_LINK = re.compile(
    r"(?i)(?:\b[a-z][a-z0-9+.-]*://|\bwww\.)\S*"  # scheme://... and www....
    r"|\b(?:[a-z0-9-]+\.)+(?:[a-z]{2,24})\b(?:/\S*)?"  # bare domains: evil.example/pay, bit.ly/x
)


def template_data(value: Any, limit: int) -> str:
    """A dossier value fit for an SMS template: NFC without invisible characters, one line, no link,
    at most `limit` characters."""
    text = clean_text(str(value or ""))
    text = _LINK.sub(" ", text)
    return " ".join(text.split())[:limit].rstrip()


def render_notice(cfg: Config, kind: str, params: Mapping[str, Any]) -> Rendered:
    """The text a citizen receives for a notice of this kind, within `[sms] max_parts` if possible.

    Only the procedure name is shortened to fit; code, place and hours are never cut.
    """
    sms = cfg.sms
    template = sms.templates.get(kind)
    if template is None:
        raise ValueError(f"no SMS template for notice kind {kind!r} (add it to [sms] templates)")
    values = {
        "commune": cfg.site.commune_name,
        "code": template_data(params.get("code"), DATA_LIMITS["code"]),
        "procedure": template_data(params.get("procedure"), DATA_LIMITS["procedure"]),
        "place": sms.place or cfg.site.collect_place,
        "hours": sms.hours or hours.short_text(cfg.site.opening_hours),
        "appointment_date": template_data(_format_date(params.get("appointment_date")), DATA_LIMITS["date"]),
        "hotline": cfg.site.hotline,
        "text": template_data(params.get("text"), DATA_LIMITS["text"]),
        "status": template_data(params.get("status"), DATA_LIMITS["text"]),
    }
    if sms.encoding == "ascii":  # fold once; the shortening search below then works on plain ASCII
        template = _fold_nfc(template)
        values = {k: _fold_nfc(v) for k, v in values.items()}
    rendered = prepare(_fill(template, values), sms.encoding)
    if rendered.parts <= sms.max_parts or "{procedure}" not in template or not values["procedure"]:
        return rendered
    ellipsis = "..." if sms.encoding == "ascii" else "…"
    full = values["procedure"]
    lo, hi, best = 0, len(full), None
    while lo <= hi:  # longest prefix of the procedure name that still fits
        mid = (lo + hi) // 2
        candidate = prepare(_fill(template, {**values, "procedure": _shorten(full, mid, ellipsis)}), sms.encoding)
        if candidate.parts <= sms.max_parts:
            best, lo = candidate, mid + 1
        else:
            hi = mid - 1
    return best or prepare(_fill(template, {**values, "procedure": ""}), sms.encoding)
