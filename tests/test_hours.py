"""Opening hours: one module (motcua/hours.py) decides open/closed and writes the hours for the SMS,
the slip and the screen in the same notation."""
from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_babel import gettext

from kiosk.app import create_app
from kiosk.printing.content import opening_hours_text
from motcua import hours
from motcua.config import SiteConfig
from sms_gateway.text import render_notice

DEFAULT_HOURS = [{"days": [0, 1, 2, 3, 4], "open": "07:30", "close": "11:30"},
                 {"days": [0, 1, 2, 3, 4], "open": "13:30", "close": "17:00"},
                 {"days": [5], "open": "07:30", "close": "11:30"}]
TWO_DAYS_ALL_DAY = [{"days": [0, 1], "open": "00:00", "close": "00:00"}]
VN = ZoneInfo("Asia/Ho_Chi_Minh")
MONDAY = datetime(2025, 11, 24, tzinfo=VN)


def _site(periods: list[dict]) -> SiteConfig:
    return SiteConfig(opening_hours=periods)


def test_short_and_long_forms_use_one_notation():
    site = _site(DEFAULT_HOURS)
    assert hours.short_text(site.opening_hours) == "T2–T6 7:30–11:30, 13:30–17:00; T7 7:30–11:30"
    assert hours.long_lines(site.opening_hours) == ["Thứ Hai – Thứ Sáu: 7:30–11:30, 13:30–17:00",
                                                    "Thứ Bảy: 7:30–11:30"]


def test_all_day_reads_ca_ngay_in_both_forms_and_two_days_are_listed():
    site = _site(TWO_DAYS_ALL_DAY)
    assert hours.short_text(site.opening_hours) == "T2, T3 cả ngày"
    assert hours.long_lines(site.opening_hours) == ["Thứ Hai, Thứ Ba: cả ngày"]


def test_a_period_closing_at_or_before_it_opens_runs_to_midnight():
    site = _site([{"days": [6], "open": "18:00", "close": "00:00"}])
    assert hours.short_text(site.opening_hours) == "CN 18:00–24:00"
    sunday = MONDAY + timedelta(days=6)
    assert hours.is_open(site, sunday.replace(hour=23, minute=59))
    assert not hours.is_open(site, sunday.replace(hour=17, minute=59))


def test_is_open_takes_the_instant_in_the_site_zone_whatever_zone_it_comes_in():
    site = _site(DEFAULT_HOURS)
    assert hours.is_open(site, MONDAY.replace(hour=8))
    assert not hours.is_open(site, MONDAY.replace(hour=12))
    assert not hours.is_open(site, MONDAY.replace(hour=17))
    # 01:00 UTC on Monday is 08:00 in Vietnam: open
    assert hours.is_open(site, datetime(2025, 11, 24, 1, 0, tzinfo=ZoneInfo("UTC")))


def test_next_opening_after_lunch_evening_saturday_and_with_no_hours():
    site = _site(DEFAULT_HOURS)
    assert hours.next_opening(site, MONDAY.replace(hour=12)) == MONDAY.replace(hour=13, minute=30)
    assert hours.next_opening(site, MONDAY.replace(hour=18)) == (MONDAY + timedelta(days=1)).replace(hour=7, minute=30)
    saturday_noon = (MONDAY + timedelta(days=5)).replace(hour=12)
    assert hours.next_opening(site, saturday_noon) == (MONDAY + timedelta(days=7)).replace(hour=7, minute=30)
    once_a_week = _site([{"days": [0], "open": "07:30", "close": "11:30"}])
    assert hours.next_opening(once_a_week, MONDAY.replace(hour=8)) == (MONDAY + timedelta(days=7)).replace(
        hour=7, minute=30)
    assert hours.next_opening(_site([]), MONDAY) is None


def test_sms_slip_and_screen_show_the_same_hours(make_config, engine):
    cfg = make_config(site={"opening_hours": DEFAULT_HOURS}, sms={"encoding": "ucs2"})
    sms = render_notice(cfg, "result_ready", {"code": "H42-0001", "procedure": "Cấp bản sao"}).text
    assert "T2–T6 7:30–11:30, 13:30–17:00; T7 7:30–11:30" in sms
    ascii_sms = render_notice(make_config(site={"opening_hours": DEFAULT_HOURS}, sms={"encoding": "ascii"}),
                              "result_ready", {"code": "H42-0001", "procedure": "Cấp bản sao"}).text
    assert "T2-T6 7:30-11:30, 13:30-17:00; T7 7:30-11:30" in ascii_sms and ascii_sms.isascii()
    slip = opening_hours_text(cfg)
    assert slip == "Giờ làm việc: Thứ Hai – Thứ Sáu: 7:30–11:30, 13:30–17:00; Thứ Bảy: 7:30–11:30"
    app = create_app(cfg, engine, test_config={"TESTING": True})
    with app.test_request_context("/"):  # the screen's lines (in Vietnamese) read as the slip's
        assert hours.long_lines(cfg.site.opening_hours, gettext) == slip.removeprefix("Giờ làm việc: ").split("; ")


def test_the_closed_screen_lists_the_hours_in_english_through_the_catalogue(make_config, engine):
    cfg = make_config(site={"opening_hours": [{"days": [(datetime.now(VN).weekday() + 3) % 7],
                                               "open": time(7, 30).isoformat(), "close": "11:30"}]})
    c = create_app(cfg, engine, test_config={"TESTING": True}).test_client()
    page = c.get("/").get_data(as_text=True)
    assert 'id="closed"' in page and "7:30–11:30" in page
    c.get("/lang/en")
    page = c.get("/").get_data(as_text=True)
    assert 'id="closed"' in page and "day: 7:30–11:30" in page  # "Monday: …" … "Sunday: …"


def test_the_slip_font_has_a_glyph_for_the_en_dash():
    from kiosk.printing.render import font

    f = font(17)
    missing = f.getmask("\U0010ffff").getbbox()  # the font's box for a character it lacks
    assert f.getmask("–").getbbox() != missing and f.getmask("–").getbbox()[3] < missing[3]
