"""What a receipt's QR code (or a keyboard-wedge scanner, or typed input) says: a dossier code and
maybe its lookup secret.

Payloads are untrusted, opaque strings. The known forms (see docs/scanner.md and DOMAIN.md):

- a bare dossier code, e.g. ``000.00.21.H42-251125-0001``  (kind ``bare``)
- a portal URL carrying the code and secret: ``...?ma=CODE&secretKey=SECRET``, ``...?secretKey=S``
  with the code in the path, ``...?QRSCAN=<code>-<secret>``, or a lookup path
  ``.../tra-cuu-ho-so/<code>[/<secret>]``  (kind ``url``)
- ``D-<secret>-<code>`` as OpenCPS kiosks accept from USB scanners  (kind ``dsecret``)
- anything matching a per-province pattern from ``[scanner] patterns``  (kind ``custom``); besides
  ``code`` and ``secret`` a pattern may name ``procedure_code`` and ``appointment_date`` (Circular
  01/2023/TT-VPCP puts both on receipts), kept so the kiosk can show what the receipt itself says
  when neither the store nor the source knows the code

Everything else raises `PayloadRejected`. A URL is only ever mined for a code; it is never followed
or shown as a link. The function is pure and cheap: the screen calls it for every typed code too.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from urllib.parse import parse_qsl, unquote, urlsplit

from motcua.patterns import compile_scanner_pattern

MAX_LENGTH = 512

# A dossier code, validated loosely: there is no national format. Letters/digits in groups joined by
# '.', '-', '_' or '/', at least one digit and one separator, 6..64 characters. This accepts
# `000.00.21.H42-251125-0001` and `H42.22-240101-0001`, and refuses words, phone numbers and URLs.
DEFAULT_CODE_PATTERN = r"(?=[^\s]*\d)[A-Za-z0-9]+(?:[._/-][A-Za-z0-9]+)+"
CODE_LENGTH = (6, 64)
SECRET_PATTERN = r"[A-Za-z0-9]{4,32}"

CODE_PARAMS = ("ma", "mahoso", "ma_ho_so", "dossierno", "dossier_no", "dossiercode", "code", "sohoso")
SECRET_PARAMS = ("secretkey", "secret", "matracuu", "ma_tra_cuu")
QRSCAN_PARAMS = ("qrscan",)
# Path segments that mark the next segment(s) as <code>[/<secret>] on a lookup page.
LOOKUP_SEGMENTS = ("tra-cuu", "tra-cuu-ho-so", "tracuu", "tracuuhoso", "ho-so", "hoso", "dossier",
                   "dossiers", "lookup", "qr", "qrscan")


class PayloadRejected(ValueError):
    """The payload is not a dossier reference. `reason` is for logs, not for the citizen."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ParsedPayload:
    code: str
    secret: str | None
    kind: str  # "bare", "url", "dsecret" or "custom"
    # What the receipt's QR carries beyond the code, where the province's format has it (unverified).
    procedure_code: str | None = None
    appointment_date: date | None = None

    @property
    def has_receipt_details(self) -> bool:
        return self.procedure_code is not None or self.appointment_date is not None

    def as_event(self) -> dict[str, str | None]:
        return {"code": self.code, "secret": self.secret, "kind": self.kind}


@lru_cache(maxsize=64)
def _compile(pattern: str) -> re.Pattern[str]:
    return compile_scanner_pattern(pattern)


def _clean(text: str) -> str:
    if not isinstance(text, str):
        raise PayloadRejected("payload is not text")
    # Keyboard-wedge scanners end with Enter; some add a tab or a BOM.
    s = text.strip().strip("\ufeff").strip()
    if not s:
        raise PayloadRejected("empty payload")
    if len(s) > MAX_LENGTH:
        raise PayloadRejected(f"payload too long ({len(s)} characters)")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in s):
        raise PayloadRejected("payload contains control characters")
    return s


def _is_code(candidate: str, code_rx: re.Pattern[str]) -> bool:
    return CODE_LENGTH[0] <= len(candidate) <= CODE_LENGTH[1] and code_rx.fullmatch(candidate) is not None


def _secret(candidate: str | None) -> str | None:
    if candidate is None or candidate == "":
        return None
    if not re.fullmatch(SECRET_PATTERN, candidate):
        raise PayloadRejected("secret has an unexpected shape")
    return candidate


def parse_payload(text: str, patterns: list[str] | None = None, *, code_pattern: str | None = None) -> ParsedPayload:
    """Extract the dossier code (and secret) from a scanned or typed payload, or raise PayloadRejected."""
    s = _clean(text)
    for pattern in patterns or ():
        m = _compile(pattern).fullmatch(s)
        if m:
            code = m.group("code")
            groups = m.groupdict()
            if not code:
                raise PayloadRejected("pattern matched without a code")
            return ParsedPayload(code, groups.get("secret") or None, "custom",
                                 procedure_code=_procedure_code(groups.get("procedure_code")),
                                 appointment_date=_receipt_date(groups.get("appointment_date")))
    code_rx = re.compile(code_pattern or DEFAULT_CODE_PATTERN) if code_pattern else _DEFAULT_CODE_RX

    if s[:2] in ("D-", "d-"):
        secret, sep, code = s[2:].partition("-")
        if sep and secret and _is_code(code, code_rx):
            return ParsedPayload(code, _secret(secret), "dsecret")
        raise PayloadRejected("D- form without a valid secret and code")

    lowered = s[:8].lower()
    if lowered.startswith(("http://", "https://")):
        return _parse_url(s, code_rx)
    if "://" in s or s.lower().startswith(
        ("www.", "mailto:", "tel:", "sms:", "wifi:", "begin:", "geo:", "javascript:")
    ):
        raise PayloadRejected("not a dossier reference (another kind of link or data)")

    if _is_code(s, code_rx):
        return ParsedPayload(s, None, "bare")
    raise PayloadRejected("not a dossier code")


_DEFAULT_CODE_RX = re.compile(DEFAULT_CODE_PATTERN)
PROCEDURE_CODE_RX = re.compile(r"[0-9A-Za-z][0-9A-Za-z.\-]{0,31}")  # e.g. 1.001193
RECEIPT_DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%Y%m%d", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%Y%m%d%H%M%S")


def _procedure_code(text: str | None) -> str | None:
    """A receipt's procedure code, or None when absent or oddly shaped (never shown as raw input)."""
    return text if text and PROCEDURE_CODE_RX.fullmatch(text) else None


def _receipt_date(text: str | None) -> date | None:
    if not text:
        return None
    for fmt in RECEIPT_DATE_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    return None


def _parse_url(s: str, code_rx: re.Pattern[str]) -> ParsedPayload:
    try:
        parts = urlsplit(s)
    except ValueError:
        raise PayloadRejected("malformed URL") from None
    if not parts.hostname:
        raise PayloadRejected("URL without a host")
    params: dict[str, str] = {}
    # Some portals put the query after a '#' (single-page apps): read both.
    for chunk in (parts.query, parts.fragment.partition("?")[2] or (parts.fragment if "=" in parts.fragment else "")):
        for key, value in parse_qsl(chunk, keep_blank_values=True):
            params.setdefault(key.strip().lower(), value.strip())

    secret_raw = next((params[k] for k in SECRET_PARAMS if params.get(k)), None)
    code = next((params[k] for k in CODE_PARAMS if params.get(k)), None)

    for key in QRSCAN_PARAMS:
        value = params.get(key)
        if value:
            # QRSCAN=<code>-<secret>: the code may itself contain '-', the secret never does.
            head, sep, tail = value.rpartition("-")
            if sep and _is_code(head, code_rx):
                return ParsedPayload(head, _secret(tail), "url")
            raise PayloadRejected("QRSCAN value is not <code>-<secret>")

    if code is not None:
        if not _is_code(code, code_rx):
            raise PayloadRejected("URL carries a code parameter that is not a dossier code")
        return ParsedPayload(code, _secret(secret_raw), "url")

    segments = [unquote(p) for p in parts.path.split("/") if p]
    # Path forms: .../<code>?secretKey=S, or a lookup segment followed by <code>[/<secret>].
    if segments and secret_raw is not None and _is_code(segments[-1], code_rx):
        return ParsedPayload(segments[-1], _secret(secret_raw), "url")
    for i, seg in enumerate(segments[:-1]):
        if seg.lower() in LOOKUP_SEGMENTS:
            rest = segments[i + 1:]
            if _is_code(rest[0], code_rx):
                path_secret = rest[1] if len(rest) == 2 else None
                if len(rest) > 2:
                    break
                return ParsedPayload(rest[0], _secret(secret_raw or path_secret), "url")
    if secret_raw is not None:
        raise PayloadRejected("URL has a secret but no dossier code")
    raise PayloadRejected("URL is not a dossier lookup link")


def parse_with_config(text: str, scanner_cfg) -> ParsedPayload:  # motcua.config.ScannerConfig
    """`parse_payload` with the patterns from the `[scanner]` section."""
    return parse_payload(text, scanner_cfg.patterns, code_pattern=scanner_cfg.code_pattern or None)
