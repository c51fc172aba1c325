"""The citizen-facing status vocabulary (see docs/statuses.md and shared DOMAIN.md).

Source systems (OpenCPS and the provincial systems built on it) use internal codes; the
`[statuses] source_map` setting maps them onto these. Labels here are the canonical Vietnamese
wording; screens take them through the translation catalogue.
"""
from __future__ import annotations

from dataclasses import dataclass


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
        Status("waiting", "Chờ xử lý", "Waiting to be processed", False, False),
        Status("processing", "Đang xử lý", "Being processed", False, False),
        Status("more_documents", "Yêu cầu bổ sung giấy tờ", "More documents needed", True, False),
        Status("denied", "Từ chối xử lý", "Denied", True, True),
        Status("result_ready", "Chờ trả kết quả", "Result ready for pickup", True, False),
        Status("handed_over", "Đã trả kết quả", "Result handed over", False, True),
        Status("cancelled", "Đã hủy", "Cancelled", False, True),
    ]
}

NOTIFY_STATUSES = frozenset(c for c, s in STATUSES.items() if s.notify)
OVERDUE_LABEL_VI = "Quá hạn"
OVERDUE_LABEL_EN = "Overdue"


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
