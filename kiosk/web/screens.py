"""What the status screen says for each dossier status: label, colour, icon and what to do next.

Labels come from `motcua.statuses` through the catalogue (kiosk.i18n.status_label), as on every
other page.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from flask_babel import gettext as _

from kiosk.i18n import OVERDUE_LABEL, STATUS_LABELS, status_label
from kiosk.store.dossiers import PublicDossier
from motcua.config import Config
from motcua.hours import site_zone

# tone -> CSS class (colour); icon -> symbol id in templates/kiosk/_icons.html
STATUS_LOOK: dict[str, tuple[str, str]] = {
    "waiting": ("info", "hourglass"),
    "processing": ("info", "gear"),
    "more_documents": ("warn", "doc-plus"),
    "denied": ("bad", "cross"),
    "result_ready": ("good", "check"),
    "handed_over": ("done", "check"),
    "cancelled": ("done", "cross"),
}


# Statuses for which asking for an SMS still makes sense (the notice goes out on a later change).
SMS_USEFUL = frozenset({"waiting", "processing", "more_documents"})


@dataclass(frozen=True)
class StatusScreen:
    dossier: PublicDossier
    label: str
    tone: str
    icon: str
    next_steps: list[str]
    appointment: str | None
    received: str | None
    can_ask_sms: bool


def fmt_date(d: date | None) -> str | None:
    return d.strftime("%d/%m/%Y") if d else None


def freshness(when: datetime | None, cfg: Config) -> str | None:
    """'Cập nhật lúc 08:15 ngày 01/12': when the provincial system last confirmed what is shown."""
    if when is None:
        return None
    local = when.astimezone(site_zone(cfg.site))
    return _("Cập nhật lúc %(time)s ngày %(date)s", time=local.strftime("%H:%M"), date=local.strftime("%d/%m"))


def next_steps(d: PublicDossier, cfg: Config) -> list[str]:
    """Plain sentences: what the citizen should do now (documents, which counter)."""
    site = cfg.site
    if d.status == "result_ready":
        return [
            _("Kết quả đã có. Mời bạn đến %(place)s để nhận.", place=site.collect_place),
            _("Mang theo giấy tiếp nhận và căn cước công dân."),
        ]
    if d.status == "more_documents":
        return [
            _("Hồ sơ cần bổ sung giấy tờ."),
            _("Mang giấy tiếp nhận đến %(place)s để được hướng dẫn.", place=site.department_name),
        ]
    if d.status == "denied":
        return [_("Hồ sơ không được giải quyết. Mời bạn đến %(place)s để nghe giải thích.", place=site.department_name)]
    if d.status == "handed_over":
        return [_("Bạn đã nhận kết quả. Bạn không cần làm gì thêm.")]
    if d.status == "cancelled":
        return [_("Hồ sơ đã hủy. Nếu cần, hãy hỏi cán bộ tại %(place)s.", place=site.department_name)]
    if d.overdue:
        return [
            _("Hồ sơ đã quá ngày hẹn trả. Xin lỗi bạn vì sự chậm trễ."),
            _("Mời bạn hỏi cán bộ tại %(place)s.", place=site.department_name),
        ]
    if d.appointment_date:
        return [_("Hồ sơ đang được giải quyết. Bạn chưa cần làm gì."),
                _("Hãy quay lại vào ngày hẹn trả %(date)s.", date=fmt_date(d.appointment_date))]
    return [_("Hồ sơ đang được giải quyết. Bạn chưa cần làm gì.")]


def status_screen(d: PublicDossier, cfg: Config) -> StatusScreen:
    tone, icon = STATUS_LOOK.get(d.status, ("info", "hourglass"))
    label = status_label(d.status)
    return StatusScreen(
        dossier=d,
        label=label,
        tone="bad" if d.overdue else tone,
        icon=icon,
        next_steps=next_steps(d, cfg),
        appointment=fmt_date(d.appointment_date),
        received=fmt_date(d.received_on),
        can_ask_sms=d.status in SMS_USEFUL,
    )

__all__ = ["OVERDUE_LABEL", "STATUS_LABELS", "StatusScreen", "next_steps", "status_screen"]
