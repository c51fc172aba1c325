"""One rule for text that comes in from outside (ingest, import, staff edits, kiosk input).

Vietnamese arrives both precomposed (NFC) and decomposed (NFD, from some Mac and web exports);
stored as it came, a search for "Hằng" misses the decomposed "Hằng". Invisible format characters
(Unicode category Cf: bidi overrides such as U+202E, zero-width spaces and joiners, the BOM) have no
place in Vietnamese names or procedure titles, and a right-to-left override turns "gnp.exe" into
"exe.png" on a printed slip. So every way in stores NFC without them.

Dossier codes are stricter: they are keys that citizens type and scanners read, so they are plain
ASCII letters and digits joined by `. _ / -` (no national format exists, see DOMAIN.md). That refuses
look-alike letters (Cyrillic "А" for Latin "A"), invisible characters and spreadsheet formulas
(`=HYPERLINK(...)`) instead of storing them.
"""
from __future__ import annotations

import re
import unicodedata

CODE_MAX = 100
CODE_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,%d})" % (CODE_MAX - 1))


def _is_format(ch: str) -> bool:
    return unicodedata.category(ch) == "Cf"


def has_format_chars(text: str) -> bool:
    """True if the text carries an invisible format character (bidi control, zero-width, BOM...)."""
    return any(map(_is_format, text))


def clean_text(text: str) -> str:
    """NFC, without bidi controls, zero-width characters or any other format character."""
    text = unicodedata.normalize("NFC", text)
    if text.isascii() or not has_format_chars(text):
        return text
    return "".join(ch for ch in text if not _is_format(ch))


def is_code(text: str) -> bool:
    """Does this look like a dossier code (ASCII letters/digits joined by . _ / -, at most 100)?"""
    return CODE_RE.fullmatch(text) is not None


__all__ = ["CODE_MAX", "CODE_RE", "clean_text", "has_format_chars", "is_code"]
