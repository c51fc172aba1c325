"""Opening hours: the one place that decides whether the hall is open and writes the hours down.

Every reader uses the same notation so a citizen sees the same hours on the screen, the slip and the
SMS: spans as "7:30–11:30" (en dash, hour without a leading zero), periods of the same days joined
by ", ", three or more consecutive days as a range, "cả ngày" for 0:00–0:00. The short form (SMS,
where every character counts) names days "T2".."CN"; the long form (screen, slip) "Thứ Hai"..
"Chủ nhật". A close time at or before the open time means the period runs to midnight.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from motcua.config import OpeningPeriod, SiteConfig
from motcua.i18n import N_

DAYS_SHORT = ("T2", "T3", "T4", "T5", "T6", "T7", "CN")
DAYS_LONG = (N_("Thứ Hai"), N_("Thứ Ba"), N_("Thứ Tư"), N_("Thứ Năm"), N_("Thứ Sáu"), N_("Thứ Bảy"),
             N_("Chủ nhật"))
ALL_DAY = N_("cả ngày")


def _same(text: str) -> str:
    return text


def site_zone(site: SiteConfig) -> ZoneInfo:
    """The site's time zone ([site] timezone): the hall's clock, and the provincial system's dates."""
    return ZoneInfo(site.timezone)


def local_now(site: SiteConfig) -> datetime:
    """Now in the site's time zone, whatever the machine's."""
    return datetime.now(site_zone(site))


def _runs_to_midnight(p: OpeningPeriod) -> bool:
    return p.close <= p.open


def is_open(site: SiteConfig, now: datetime | None = None) -> bool:
    """True when `now` (taken in site time) falls inside a configured period."""
    now = (now or local_now(site)).astimezone(site_zone(site))
    t = now.time().replace(tzinfo=None)
    return any(now.weekday() in p.days and p.open <= t and (t < p.close or _runs_to_midnight(p))
               for p in site.opening_hours)


def next_opening(site: SiteConfig, now: datetime | None = None) -> datetime | None:
    """The next moment after `now` at which a period opens (site time), or None with no periods.
    When the hall is open now, this is the next opening after the current period."""
    now = (now or local_now(site)).astimezone(site_zone(site))
    best: datetime | None = None
    for offset in range(8):  # a week and a day covers a period that opens once a week, earlier today
        day = (now + timedelta(days=offset)).date()
        for p in site.opening_hours:
            if day.weekday() not in p.days:
                continue
            start = datetime.combine(day, p.open, tzinfo=now.tzinfo)
            if start > now and (best is None or start < best):
                best = start
        if best is not None:
            return best
    return None


def _hm(t: time) -> str:
    return f"{t.hour}:{t.minute:02d}"


def _span(p: OpeningPeriod, translate: Callable[[str], str]) -> str:
    if p.open == p.close == time(0):
        return translate(ALL_DAY)
    close = "24:00" if _runs_to_midnight(p) else _hm(p.close)
    return f"{_hm(p.open)}–{close}"


def _groups(periods: Iterable[OpeningPeriod], translate: Callable[[str], str]) -> list[tuple[list[int], str]]:
    """Consecutive days that share the same spans, in week order: [([0..4], '7:30–11:30, 13:30–17:00')]."""
    by_day: dict[int, list[str]] = {}
    for p in sorted(periods, key=lambda p: p.open):
        for d in sorted(set(p.days)):
            by_day.setdefault(d, []).append(_span(p, translate))
    groups: list[tuple[list[int], str]] = []
    for d in sorted(by_day):
        spans = ", ".join(by_day[d])
        if groups and groups[-1][1] == spans and groups[-1][0][-1] == d - 1:
            groups[-1][0].append(d)
        else:
            groups.append(([d], spans))
    return groups


def _days(days: list[int], names: Iterable[str], range_sep: str) -> str:
    names = list(names)
    if len(days) > 2:
        return f"{names[days[0]]}{range_sep}{names[days[-1]]}"
    return ", ".join(names[d] for d in days)


def short_text(periods: Iterable[OpeningPeriod]) -> str:
    """For an SMS: 'T2–T6 7:30–11:30, 13:30–17:00; T7 7:30–11:30' (folded to ASCII, '–' becomes '-')."""
    return "; ".join(f"{_days(days, DAYS_SHORT, '–')} {spans}" for days, spans in _groups(periods, _same))


def long_lines(periods: Iterable[OpeningPeriod], translate: Callable[[str], str] = _same) -> list[str]:
    """For the screen and the slip, one line per group: 'Thứ Hai – Thứ Sáu: 7:30–11:30, 13:30–17:00'.
    `translate` is the screen's gettext (day names and 'cả ngày' are catalogue entries); paper passes none."""
    return [f"{_days(days, map(translate, DAYS_LONG), ' – ')}: {spans}"
            for days, spans in _groups(periods, translate)]
