"""The citizen-facing status vocabulary (see docs/statuses.md and shared DOMAIN.md).

Source systems (OpenCPS and the provincial systems built on it) use internal codes; the
`[statuses] source_map` setting maps them onto these. Labels here are the canonical wording: the
Vietnamese label is the translation catalogue's message id (kiosk screens and staff pages show it
through the catalogue, `kiosk.i18n.status_label`); the English one is for text printed or sent
without a screen language (the bilingual slip), and a test keeps it equal to the catalogue's.
"""
from __future__ import annotations

from dataclasses import dataclass

from motcua.i18n import N_


@dataclass(frozen=True)
class Status:
    code: str
    label_vi: str
    label_en: str
    notify: bool  # a change into this status sends the citizen one SMS notice
    final: bool


STATUSES: dict[str, Status] = {
    s.code: s
    for s in [
        Status("waiting", N_("Chờ xử lý"), "Waiting to be processed", False, False),
        Status("processing", N_("Đang xử lý"), "Being processed", False, False),
        Status("more_documents", N_("Yêu cầu bổ sung giấy tờ"), "More documents needed", True, False),
        Status("denied", N_("Từ chối xử lý"), "Denied", True, True),
        Status("result_ready", N_("Chờ trả kết quả"), "Result ready for pickup", True, False),
        Status("handed_over", N_("Đã trả kết quả"), "Result handed over", False, True),
        Status("cancelled", N_("Đã hủy"), "Cancelled", False, True),
    ]
}

NOTIFY_STATUSES = frozenset(c for c, s in STATUSES.items() if s.notify)
OVERDUE_LABEL_VI = N_("Quá hạn")
OVERDUE_LABEL_EN = "Overdue"


def printed_label(code: str, overdue: bool = False) -> str:
    """The status as paper shows it, with no screen language: 'Đang xử lý (Quá hạn) · Being processed
    (Overdue)'. The same wording the screens take through the catalogue; an unknown code as it is."""
    status = STATUSES.get(code)
    vi, en = (status.label_vi, status.label_en) if status else (code, code)
    if overdue:
        vi, en = f"{vi} ({OVERDUE_LABEL_VI})", f"{en} ({OVERDUE_LABEL_EN})"
    return f"{vi} · {en}"


class UnknownStatus(ValueError):
    pass


def canonical_status(raw: str, source_map: dict[str, str]) -> str:
    """Map a source status code (or an already canonical one) to the kiosk's vocabulary."""
    key = (raw or "").strip().lower()
    if key in source_map:
        return source_map[key]
    if key in STATUSES:
        return key
    raise UnknownStatus(f"unknown status {raw!r}")
