"""Opening hours: is the hall open now, and the hours as a sentence for the screen."""
from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from flask_babel import gettext as _

from motcua.config import OpeningPeriod, SiteConfig


def local_now(site: SiteConfig) -> datetime:
    return datetime.now(ZoneInfo(site.timezone))


def is_open(site: SiteConfig, now: datetime | None = None) -> bool:
    """True when `now` (site time) falls inside a configured period. A close time at or before the
    open time means the period runs to midnight (so 00:00-00:00 is all day)."""
    now = now or local_now(site)
    t = now.time().replace(tzinfo=None)
    for period in site.opening_hours:
        if now.weekday() not in period.days:
            continue
        if period.open <= t and (t < period.close or period.close <= period.open):
            return True
    return False


def _day_name(d: int) -> str:
    return [_("Thứ Hai"), _("Thứ Ba"), _("Thứ Tư"), _("Thứ Năm"), _("Thứ Sáu"), _("Thứ Bảy"), _("Chủ nhật")][d]


def _hm(t: time) -> str:
    return f"{t.hour}:{t.minute:02d}"


def _day_range(days: tuple[int, ...]) -> str:
    """(0,1,2,3,4) -> 'Thứ Hai – Thứ Sáu'; (0,2) -> 'Thứ Hai, Thứ Tư'."""
    if len(days) > 2 and list(days) == list(range(days[0], days[-1] + 1)):
        return f"{_day_name(days[0])} – {_day_name(days[-1])}"
    return ", ".join(_day_name(d) for d in days)


def describe(periods: list[OpeningPeriod]) -> list[str]:
    """One line per group of days with the same hours: 'Thứ Hai – Thứ Sáu: 7:30–11:30, 13:30–17:00'."""
    by_day: dict[int, list[str]] = {}
    for p in sorted(periods, key=lambda p: p.open):
        span = _("cả ngày") if p.open == p.close == time(0) else f"{_hm(p.open)}–{_hm(p.close)}"
        for d in p.days:
            by_day.setdefault(d, []).append(span)
    groups: list[tuple[tuple[int, ...], str]] = []
    for d in sorted(by_day):
        spans = ", ".join(by_day[d])
        if groups and groups[-1][1] == spans and groups[-1][0][-1] == d - 1:
            groups[-1] = (groups[-1][0] + (d,), spans)
        else:
            groups.append(((d,), spans))
    return [f"{_day_range(days)}: {spans}" for days, spans in groups]
