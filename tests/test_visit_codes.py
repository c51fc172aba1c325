"""Typed dossier codes (kiosk.store.codes) on SQLite and PostgreSQL: separators forgiven, the commune's
short forms found only when exactly one dossier matches."""
from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from kiosk.store import codes
from kiosk.store.ingest import Parser, ingest_batch
from motcua.config import DEFAULT_STATUS_MAP

TODAY = date(2026, 11, 17)
PREFIX = "000.00.21.H42"


def _seed(engine, codes_: list[str]) -> None:
    parser = Parser(status_map=dict(DEFAULT_STATUS_MAP), tz=ZoneInfo("Asia/Ho_Chi_Minh"))
    ingest_batch(engine, parser, [{"code": c, "status": "processing", "procedure": "Đăng ký khai sinh"}
                                  for c in codes_], via="test")


@pytest.fixture
def store(any_engine):
    _seed(any_engine, [f"{PREFIX}-261117-0008", f"{PREFIX}-261116-0003", f"{PREFIX}-261115-0003",
                       f"{PREFIX}-261001-0005", "H43.22-261117-0009", f"{PREFIX}-261117-0011"])
    return any_engine


def resolve(engine, typed: str, prefixes=(PREFIX,), days: int = 7) -> str | None:
    with engine.connect() as conn:
        return codes.resolve(conn, typed, tuple(prefixes), TODAY, days)


@pytest.mark.parametrize("typed", ["000.00.21.H42-261117-0008", "0000021H422611170008", "000.00.21.H42 261117 0008",
                                   "000-00-21-h42-261117-0008", "2611170008", "261117-0008", "261117 0008", "8",
                                   "0008"])
def test_every_spelling_of_a_code_finds_the_same_dossier(store, typed):
    assert resolve(store, typed) == f"{PREFIX}-261117-0008"


def test_a_sequence_shared_by_two_recent_days_finds_nothing(store):
    assert resolve(store, "3") is None and resolve(store, "0003") is None
    assert resolve(store, "261116-0003") == f"{PREFIX}-261116-0003"  # with the date it is unique again


def test_a_short_code_matches_only_the_communes_agency_and_recent_days(store):
    assert resolve(store, "0009") is None  # another agency's dossier is never reached by a short code
    assert resolve(store, "H43.22-261117-0009") == "H43.22-261117-0009"  # but its full code works
    assert resolve(store, "5") is None  # received 47 days ago
    assert resolve(store, "5", days=60) == f"{PREFIX}-261001-0005"
    assert resolve(store, "8", prefixes=()) is None  # no known prefix: no shortening


@pytest.mark.parametrize("typed", ["", "12345", "9999999999", "261399-0008", "H42", "0000"])
def test_codes_that_match_nothing_find_nothing(store, typed):
    assert resolve(store, typed) is None


def test_the_agency_prefix_is_the_configured_one_else_the_most_common_stored(store):
    with store.connect() as conn:
        assert codes.agency_prefixes(conn, [" 000.00.99.H42- "]) == ("000.00.99.H42",)
        assert codes.agency_prefixes(conn, []) == (PREFIX,)


def test_typed_digits_are_grouped_as_on_the_receipt():
    assert codes.group_digits("2611170008") == "261117-0008"
    assert codes.group_digits("261117-00") == "261117-00"
    assert codes.group_digits("2611") == "2611"
