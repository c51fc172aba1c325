"""Typed dossier codes: forgiving separators and the commune's short forms.

A dossier code is `<agency>-YYMMDD-XXXX` (Circular 01/2018/TT-VPCP art. 19, see DOMAIN.md): the agency
part is the same for every dossier a commune receives, so a citizen at the keypad only needs the date
and the 4-digit sequence, or the sequence alone for a dossier received in the last few days.

Rules (one place, used by the lookup screen and its tests):
- separators are forgiven: `000.00.21.H42-261117-0008`, `0000021H422611170008` and `261117 0008` are
  the same typed code;
- a shortened code (date + sequence, or sequence only) is resolved only against codes that carry one of
  the commune's agency prefixes, and only when exactly one dossier matches. No match and several
  matches give the same answer, so the keypad never tells which other dossiers exist.
"""
from __future__ import annotations

import re
import time
from collections import Counter
from datetime import date, timedelta
from typing import Iterable

import sqlalchemy as sa

from kiosk.store.schema import dossiers

# <agency>-YYMMDD-XXXX; the agency itself has no fixed shape.
CODE_PARTS = re.compile(r"^(?P<agency>.+)-(?P<day>\d{6})-(?P<seq>\d{4})$")
SEPARATORS = re.compile(r"[\s._/\-]+")
PREFIX_SAMPLE = 2000  # recent dossiers read to find the commune's own agency prefix
PREFIX_TTL_S = 300.0

_prefix_cache: dict[str, tuple[float, tuple[str, ...]]] = {}


def compact(text: str) -> str:
    """The code without separators, upper case: what two spellings of one code have in common."""
    return SEPARATORS.sub("", text or "").upper()


def _compact_sql(column: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    expr = sa.func.upper(column)
    for sep in (".", "-", "_", "/", " "):
        expr = sa.func.replace(expr, sep, "")
    return expr


def most_common_prefix(codes: Iterable[str]) -> str | None:
    counts = Counter(m.group("agency") for m in map(CODE_PARTS.match, codes) if m)
    return counts.most_common(1)[0][0] if counts else None


def agency_prefixes(conn: sa.Connection, configured: Iterable[str] = ()) -> tuple[str, ...]:
    """The commune's agency prefixes: the configured list, else the most common one among the stored
    codes (cached for a few minutes: it changes only when the commune's agency code does)."""
    configured = tuple(p.strip().rstrip("-") for p in configured if p.strip())
    if configured:
        return configured
    key = str(conn.engine.url)
    hit = _prefix_cache.get(key)
    if hit and time.monotonic() - hit[0] < PREFIX_TTL_S:
        return hit[1]
    codes = conn.execute(sa.select(dossiers.c.code).order_by(dossiers.c.id.desc()).limit(PREFIX_SAMPLE)).scalars()
    found = most_common_prefix(codes)
    prefixes = (found,) if found else ()
    if prefixes:  # an empty store is not remembered: the first ingest should show up at once
        _prefix_cache[key] = (time.monotonic(), prefixes)
    return prefixes


def _unique(codes: list[str]) -> str | None:
    return codes[0] if len(set(codes)) == 1 else None


def _valid_day(yymmdd: str) -> bool:
    try:
        date(2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:]))
    except ValueError:
        return False
    return True


def resolve(conn: sa.Connection, typed: str, prefixes: tuple[str, ...], today: date, recent_days: int) -> str | None:
    """The stored code the citizen meant, or None (nothing, or more than one dossier, matches)."""
    typed = (typed or "").strip()
    if not typed:
        return None
    exact = conn.execute(sa.select(dossiers.c.code).where(dossiers.c.code == typed)).scalar()
    if exact:
        return exact
    key = compact(typed)
    if not key.isalnum():
        return None
    same = list(conn.execute(sa.select(dossiers.c.code).where(_compact_sql(dossiers.c.code) == key).limit(2)).scalars())
    if same:
        return _unique(same)
    if not key.isdigit() or not prefixes:
        return None
    if len(key) == 10 and _valid_day(key[:6]):  # YYMMDD + sequence
        wanted = [f"{p}-{key[:6]}-{key[6:]}" for p in prefixes]
    elif 1 <= len(key) <= 4 and recent_days > 0:  # the sequence of a recent day
        days = [(today - timedelta(days=i)).strftime("%y%m%d") for i in range(recent_days)]
        wanted = [f"{p}-{d}-{int(key):04d}" for p in prefixes for d in days]
    else:
        return None
    found = list(conn.execute(sa.select(dossiers.c.code).where(dossiers.c.code.in_(wanted)).limit(2)).scalars())
    return _unique(found)


def group_digits(digits: str) -> str:
    """'2611170008' -> '261117-0008', as the date and sequence stand on the receipt."""
    d = re.sub(r"\D", "", digits or "")
    return d if len(d) <= 6 else f"{d[:6]}-{d[6:]}"
