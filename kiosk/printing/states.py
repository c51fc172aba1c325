"""The states the print worker writes (printer) and a print job moves through, and what a screen
says for each printer state. Health, doctor, staff pages and the kiosk screens import these."""
from __future__ import annotations

from enum import StrEnum
from functools import cache
from pathlib import Path

from babel.support import NullTranslations, Translations

from motcua.i18n import N_

TRANSLATIONS = Path(__file__).resolve().parents[1] / "translations"


class PrinterState(StrEnum):
    """What the print worker last saw (kiosk/printing/connections.py answers these)."""
    OK = "ok"
    PAPER_LOW = "paper_low"
    PAPER_OUT = "paper_out"
    OFFLINE = "offline"
    UNKNOWN = "unknown"


# Nothing can print in these: the screens refuse a slip or a ticket instead of queueing it.
CANNOT_PRINT = frozenset({PrinterState.PAPER_OUT, PrinterState.OFFLINE})


class JobState(StrEnum):
    """A job moves pending -> printing -> done. A job found "printing" when a worker starts was being
    sent when the previous worker died: it becomes uncertain and is never re-sent automatically (staff
    can reprint), so no job prints twice. Expired: a queue ticket too old to be useful."""
    PENDING = "pending"
    PRINTING = "printing"
    DONE = "done"
    UNCERTAIN = "uncertain"
    EXPIRED = "expired"
    FAILED = "failed"



# The one wording per printer state (Vietnamese message ids, English in the `kiosk` catalogue).
MESSAGES: dict[PrinterState, str] = {
    PrinterState.OK: N_("Máy in sẵn sàng."),
    PrinterState.PAPER_LOW: N_("Máy in sắp hết giấy."),
    PrinterState.PAPER_OUT: N_("Máy in hết giấy. Vui lòng báo cán bộ."),
    PrinterState.OFFLINE: N_("Máy in đang không hoạt động. Vui lòng báo cán bộ."),
    PrinterState.UNKNOWN: N_("Chưa rõ tình trạng máy in."),
}


def printer_message(state: str) -> str:
    """The sentence for `state` in the current screen's language (needs a Flask request)."""
    from flask_babel import gettext  # here: the print worker imports this module and has no Flask (~15 MB)

    return gettext(_msgid(state))


@cache
def _english() -> NullTranslations:
    return Translations.load(str(TRANSLATIONS), ["en"], domain="kiosk")


def printer_messages(state: str) -> tuple[str, str]:
    """(Vietnamese, English) for `state`, without a request: for JSON and the worker's log."""
    vi = _msgid(state)
    return vi, _english().gettext(vi)


def _msgid(state: str) -> str:
    # StrEnum members compare and hash as their values, so a state read from the database finds its entry.
    return MESSAGES.get(state, MESSAGES[PrinterState.UNKNOWN])  # type: ignore[call-overload]
