"""What a ticket and a status slip say, built once when the job is submitted.

The job keeps these texts (JSON), so a slip printed after a paper change still shows the status
the citizen asked about, and the print worker needs no database reads to draw it.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Mapping

from kiosk.printing.render import fmt_date, fmt_time
from kiosk.store.dossiers import is_overdue
from motcua import hours
from motcua.config import Config
from motcua.statuses import printed_label
from motcua.timeutil import utcnow

# Per status: what the citizen does next (Vietnamese, English).
NEXT_STEPS: dict[str, tuple[str, str]] = {
    "waiting": ("Hồ sơ đang chờ xử lý. Vui lòng quay lại vào ngày hẹn trả, mang theo giấy tiếp nhận.",
                "Your dossier is waiting to be processed. Come back on the appointment date with your receipt."),
    "processing": ("Hồ sơ đang được giải quyết. Vui lòng đến nhận kết quả vào ngày hẹn trả, mang theo giấy tiếp nhận.",
                   "Your dossier is being processed. Collect the result on the appointment date; bring your receipt."),
    "more_documents": ("Cần bổ sung giấy tờ. "
                       "Vui lòng mang giấy tờ còn thiếu đến Bộ phận Một cửa; cán bộ tại quầy sẽ hướng dẫn.",
                       "More documents are needed. "
                       "Bring the missing documents to the one-stop counter; staff will explain."),
    "denied": ("Hồ sơ không được giải quyết. Vui lòng đến Bộ phận Một cửa để nhận văn bản trả lời và hướng dẫn.",
               "The dossier was denied. Please come to the one-stop counter for the written reply and guidance."),
    "result_ready": ("Đã có kết quả. Mời bạn đến nhận, mang theo giấy tiếp nhận và giấy tờ tùy thân.",
                     "The result is ready. Please collect it with your receipt and an identity document."),
    "handed_over": ("Đã trả kết quả. Bạn không cần làm gì thêm.",
                    "The result has been handed over. Nothing more to do."),
    "cancelled": ("Hồ sơ đã hủy. Vui lòng hỏi cán bộ nếu cần nộp lại.",
                  "The dossier was cancelled. Ask staff if you need to file again."),
}
OVERDUE_STEP = ("Hồ sơ đã quá ngày hẹn trả. Vui lòng hỏi cán bộ tại quầy để được giải thích.",
                "The dossier is past its appointment date. Please ask staff at the counter.")

def opening_hours_text(cfg: Config) -> str:
    """'Giờ làm việc: Thứ Hai – Thứ Sáu: 7:30–11:30, 13:30–17:00; Thứ Bảy: 7:30–11:30' (motcua.hours)."""
    lines = hours.long_lines(cfg.site.opening_hours)
    return "Giờ làm việc: " + "; ".join(lines) if lines else ""


def _local(cfg: Config, when: datetime) -> datetime:
    return when.astimezone(hours.site_zone(cfg.site))


def _counters(cfg: Config, service_code: str) -> str:
    """'1, 2': the counters that call this service's tickets (the ticket says where to go)."""
    for svc in cfg.queue.services:
        if svc.code == service_code:
            return ", ".join(svc.counters)
    return ""


def ticket_content(cfg: Config, ticket: Any) -> dict[str, Any]:
    """Texts for a queue ticket; `ticket` is a kiosk.queue.core.Ticket or its `to_dict()`."""
    t = ticket.to_dict() if hasattr(ticket, "to_dict") else dict(ticket)
    issued = t["issued_at"]
    issued = datetime.fromisoformat(issued) if isinstance(issued, str) else issued
    ahead, wait = int(t.get("waiting_ahead", 0)), int(t.get("estimated_wait_min", 0))
    if ahead:
        ahead_vi = f"Còn {ahead} người trước bạn"
        wait_vi = f"Thời gian chờ dự kiến khoảng {wait} phút"
        people = "person" if ahead == 1 else "people"
        ahead_en = f"{ahead} {people} ahead of you · about {wait} min wait"
    else:
        ahead_vi, wait_vi, ahead_en = "Bạn là người tiếp theo", "", "You are next"
    counters = _counters(cfg, t.get("service_code", ""))
    return {
        "label": t["label"],
        "service_code": t["service_code"],
        "commune": cfg.site.commune_name,
        "department": cfg.site.department_name,
        "service_vi": t.get("service_name_vi", ""),
        "service_en": t.get("service_name_en", ""),
        "ahead_vi": ahead_vi,
        "wait_vi": wait_vi,
        "ahead_en": ahead_en,
        "counters_vi": f"Phục vụ tại quầy {counters}" if counters else "",
        "counters_en": f"Served at counter {counters}" if counters else "",
        "priority": bool(t.get("priority")),
        "issued_vi": f"Lấy số lúc {fmt_time(_local(cfg, issued))}",
        "instruction_vi": "Vui lòng chờ gọi số trên màn hình và loa, rồi đến quầy.",
        "instruction_en": "Wait for your number on the screen, then go to the counter shown.",
    }


def slip_content(cfg: Config, row: Mapping[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """Texts for a status slip from a `dossiers` row. No name, phone or lookup secret is printed:
    a slip left behind in the hall must not reveal anyone's data."""
    now = _local(cfg, now or utcnow())
    appointment: date | None = row.get("appointment_date")
    overdue = is_overdue(row["status"], appointment, now.date())
    next_vi, next_en = OVERDUE_STEP if overdue else NEXT_STEPS.get(row["status"], ("", ""))
    fields = [
        ("Thủ tục", "Procedure", row.get("procedure") or "—", False),
        ("Tình trạng", "Status", printed_label(row["status"], overdue), True),
        ("Ngày hẹn trả", "Appointment date", fmt_date(appointment), True),
    ]
    return {
        "code": row["code"],
        "status": row["status"],
        "commune": cfg.site.commune_name,
        "department": cfg.site.department_name,
        "fields": fields,
        "next_vi": next_vi,
        "next_en": next_en,
        "collect_place": cfg.site.collect_place,
        "hours": opening_hours_text(cfg),
        "printed_vi": f"In lúc {fmt_time(now)} · {cfg.site.address}",
    }
