"""Citizen screens through the Flask test client: privacy, parsing of every input, security headers,
languages, opening hours, rate limits shared by workers, and no stack trace on the screen."""
from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kiosk.app import create_app
from kiosk.store.ingest import Parser, ingest_batch
from motcua.statuses import STATUSES

# Opening hours, and status screens whose overdue/appointment wording follows today's date.
pytestmark = pytest.mark.clock

ALL_WEEK = [{"days": [0, 1, 2, 3, 4, 5, 6], "open": "00:00", "close": "00:00"}]
CODE = "000.00.21.H42-251125-0001"
LAN = {"REMOTE_ADDR": "192.168.1.50"}


@pytest.fixture
def kiosk_app(make_config, engine):
    cfg = make_config(site={"opening_hours": ALL_WEEK})
    app = create_app(cfg, engine, test_config={"TESTING": True})
    today = date.today()
    report = ingest_batch(engine, Parser.from_config(cfg), [
            {"code": CODE, "secret": "ABC234", "procedure": "Đăng ký khai sinh", "field": "Hộ tịch",
             "applicant_name": "Nguyễn Văn Hùng", "phone": "0912345678", "status": "processing",
             "appointment_date": (today + timedelta(days=4)).isoformat()},
    ], via="api")
    assert not report.errors
    return app


def lookup(client, environ=None, **form):
    return client.post("/lookup", data=form, environ_base=environ or {})


def test_without_secret_only_status_procedure_and_dates(kiosk_app):
    html = lookup(kiosk_app.test_client(), code=CODE).get_data(as_text=True)
    assert "Đang xử lý" in html and "Đăng ký khai sinh" in html
    assert "Hùng" not in html and "0912" not in html and "345678" not in html


def test_with_secret_name_is_masked_and_phone_never_shown(kiosk_app):
    c = kiosk_app.test_client()
    html = lookup(c, payload=f"https://motcua.example.vn/tra-cuu?ma={CODE}&secretKey=abc234").get_data(as_text=True)
    assert "N***** V** Hùng" in html and "Nguyễn" not in html
    assert "0912345678" not in html
    html = c.post("/sms", data={"code": CODE, "secret": "ABC234"}).get_data(as_text=True)
    assert re.search(r"\(\*{5,}678\)", html)
    assert "0912345678" not in html


def test_wrong_secret_shows_status_only_and_says_so(kiosk_app):
    html = lookup(kiosk_app.test_client(), code=CODE, secret="WRONG1").get_data(as_text=True)
    assert 'id="secret-wrong"' in html and "Hùng" not in html


@pytest.mark.parametrize("payload", [
    "<script>alert(1)</script>", "javascript:alert(1)", "A" * 10_240, "http://evil.example/x", "\x00\x01", "",
])
def test_hostile_or_empty_input_gets_the_unreadable_screen(kiosk_app, payload):
    c = kiosk_app.test_client()
    for form in ({"payload": payload, "source": "wedge"}, {"code": payload, "source": "camera"},
                 {"code": CODE, "secret": payload or "x"}):
        resp = lookup(c, **form)
        html = resp.get_data(as_text=True)
        assert resp.status_code == 400, form
        assert 'id="unreadable"' in html
        assert "<script>alert" not in html and "javascript:" not in html and "Traceback" not in html


def test_unknown_code_gets_not_found_with_the_code_escaped(kiosk_app):
    resp = lookup(kiosk_app.test_client(), code="000.00.21.H42-991231-9999")
    assert resp.status_code == 404 and "000.00.21.H42-991231-9999" in resp.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/", "/scan", "/code", "/ticket", "/static/kiosk/kiosk.js", "/nope",
                                  "/api/v1/openapi.json"])
def test_every_response_carries_the_security_headers(kiosk_app, path):
    resp = kiosk_app.test_client().get(path)
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
    assert "default-src 'self'" in csp and "http" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["X-Frame-Options"] == "DENY"
    if resp.mimetype == "text/html":
        assert resp.headers["Cache-Control"] == "no-store"


def test_pages_have_no_inline_script_or_external_reference(kiosk_app):
    c = kiosk_app.test_client()
    pages = [c.get(p).get_data(as_text=True) for p in ("/", "/scan", "/code", "/ticket")]
    pages.append(lookup(c, code=CODE, secret="ABC234").get_data(as_text=True))
    for html in pages:
        assert "<script>" not in html and " on" + "click=" not in html and "style=" not in html
        assert "http://" not in html and "https://" not in html
        for ref in re.findall(r'(?:src|href|action)="([^"]*)"', html):
            assert ref.startswith(("/", "#")) and not ref.startswith("//"), ref


def test_status_labels_match_the_canonical_vocabulary_in_both_languages(kiosk_app):
    from flask_babel import force_locale

    from kiosk.web.screens import STATUS_LABELS

    assert set(STATUS_LABELS) == set(STATUSES)
    with kiosk_app.test_request_context("/"):
        for code, status in STATUSES.items():
            assert str(STATUS_LABELS[code]) == status.label_vi
            with force_locale("en"):
                assert str(STATUS_LABELS[code]) == status.label_en


def test_english_switch_and_missing_domain_catalogues_are_tolerated(kiosk_app, tmp_path):
    c = kiosk_app.test_client()
    assert "Xin chào" in c.get("/").get_data(as_text=True)
    c.get("/lang/en?next=/")
    html = c.get("/").get_data(as_text=True)
    assert "Hello! What would you like to do?" in html and '<html lang="en">' in html
    assert "Being processed" in lookup(c, code=CODE).get_data(as_text=True)
    c.get("/reset")
    assert "Xin chào" in c.get("/").get_data(as_text=True)
    # An open redirect is not possible through the language switch.
    assert c.get("/lang/vi?next=https://evil.example/").headers["Location"] == "/"


def test_domain_without_a_catalogue_falls_back_to_vietnamese(make_config, engine):
    cfg = make_config(site={"opening_hours": ALL_WEEK})
    app = create_app(cfg, engine, test_config={"TESTING": True, "BABEL_DOMAIN": "kiosk;nonexistent",
                                               "BABEL_TRANSLATION_DIRECTORIES": "translations;translations"})
    c = app.test_client()
    c.get("/lang/en")
    assert "Hello!" in c.get("/").get_data(as_text=True)


def test_opening_hours_decide_between_home_and_closed(make_config, engine):
    from flask_babel import gettext

    from motcua import hours

    cfg = make_config(site={"opening_hours": [{"days": [0, 1, 2, 3, 4], "open": "07:30", "close": "11:30"},
                                              {"days": [0, 1, 2, 3, 4], "open": "13:30", "close": "17:00"},
                                              {"days": [5], "open": "07:30", "close": "11:30"}]})
    tz = ZoneInfo(cfg.site.timezone)
    monday = datetime(2025, 11, 24, tzinfo=tz)
    assert hours.is_open(cfg.site, monday.replace(hour=8))
    assert not hours.is_open(cfg.site, monday.replace(hour=12))
    assert not hours.is_open(cfg.site, monday.replace(hour=17))
    assert hours.is_open(cfg.site, (monday + timedelta(days=5)).replace(hour=9))
    assert not hours.is_open(cfg.site, (monday + timedelta(days=6)).replace(hour=9))
    app = create_app(cfg, engine, test_config={"TESTING": True})
    with app.test_request_context("/"):
        assert hours.long_lines(cfg.site.opening_hours, gettext) == [
            "Thứ Hai – Thứ Sáu: 7:30–11:30, 13:30–17:00", "Thứ Bảy: 7:30–11:30"]
    now = hours.local_now(cfg.site)  # in the site's zone whatever the machine's TZ
    assert now.utcoffset() == timedelta(hours=7) and abs(now - datetime.now(UTC)) < timedelta(minutes=1)


def test_rate_limit_is_shared_by_workers_and_spares_the_kiosk_screen(make_config, engine):
    cfg = make_config(site={"opening_hours": ALL_WEEK}, kiosk={"public_lookup_rate": "3 per minute"})
    worker1 = create_app(cfg, engine, test_config={"TESTING": True}).test_client()
    worker2 = create_app(cfg, engine, test_config={"TESTING": True}).test_client()
    answers = [lookup(w, LAN, code=CODE).status_code for w in (worker1, worker2, worker1, worker2, worker1)]
    assert answers == [404, 404, 404, 429, 429]  # answered (no such dossier), then limited
    assert "quá nhiều lần" in lookup(worker2, LAN, code=CODE).get_data(as_text=True)
    # the kiosk's own screen (127.0.0.1 by default) is never limited
    assert all(lookup(worker1, code=CODE).status_code == 404 for _ in range(5))


def test_printing_and_adding_a_phone_are_refused_from_the_lan(kiosk_app):
    c = kiosk_app.test_client()
    assert c.post("/slip", data={"code": CODE}, environ_base=LAN).status_code == 403
    assert c.post("/sms/phone", data={"code": CODE, "secret": "ABC234", "phone": "0912000111", "consent": "yes"},
                  environ_base=LAN).status_code == 403
    html = lookup(c, LAN, code=CODE).get_data(as_text=True)
    assert 'id="print-slip"' not in html
    assert 'data-events-url=""' in html  # no camera scan events for the LAN
    assert 'data-events-url="/scanner/events"' in lookup(c, code=CODE).get_data(as_text=True)


def test_phone_needs_the_secret_and_consent_and_never_overwrites(kiosk_app, engine):
    import sqlalchemy as sa

    with engine.begin() as conn:
        conn.execute(sa.text("update dossiers set phone = null where code = :c"), {"c": CODE})
    c = kiosk_app.test_client()
    html = c.post("/sms", data={"code": CODE}).get_data(as_text=True)
    assert 'id="consent-text"' not in html and "mã tra cứu" in html
    resp = c.post("/sms/phone", data={"code": CODE, "secret": "ABC234", "phone": "0912000111"})
    assert resp.status_code == 400 and "đồng ý" in resp.get_data(as_text=True)
    resp = c.post("/sms/phone", data={"code": CODE, "secret": "ABC234", "phone": "12", "consent": "yes"})
    assert resp.status_code == 400 and 'id="phone-error"' in resp.get_data(as_text=True)
    resp = c.post("/sms/phone", data={"code": CODE, "secret": "ABC234", "phone": "01689123456", "consent": "yes"})
    assert "Đã lưu số điện thoại" in resp.get_data(as_text=True)
    c.post("/sms/phone", data={"code": CODE, "secret": "ABC234", "phone": "0912000111", "consent": "yes"})
    with engine.connect() as conn:
        assert conn.execute(sa.text("select phone from dossiers where code = :c"),
                            {"c": CODE}).scalar() == "+84389123456"


def test_a_crash_shows_a_sentence_not_a_trace(kiosk_app, monkeypatch):
    from kiosk.store import dossiers

    def boom(*a, **k):
        raise RuntimeError("database exploded at /secret/path")

    monkeypatch.setattr(dossiers, "find", boom)
    kiosk_app.config["PROPAGATE_EXCEPTIONS"] = False
    resp = lookup(kiosk_app.test_client(), code=CODE)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 500
    assert "sự cố" in html and "exploded" not in html and "Traceback" not in html


def test_lookup_on_sqlite_and_postgresql(any_engine, make_config):
    cfg = make_config(site={"opening_hours": ALL_WEEK})
    report = ingest_batch(any_engine, Parser.from_config(cfg), [
        {"code": CODE, "secret": "ABC234", "procedure": "Đăng ký kết hôn", "applicant_name": "Lê Thị Mai",
         "status": "releasing", "appointment_date": date.today().isoformat()}], via="api")
    assert not report.errors
    c = create_app(cfg, any_engine, test_config={"TESTING": True}).test_client()
    html = lookup(c, payload=f"D-ABC234-{CODE}").get_data(as_text=True)
    assert "Chờ trả kết quả" in html and "L* T** Mai" in html
    assert lookup(c, code="000.00.21.H42-991231-9999").status_code == 404


def test_rate_limit_window_expires(tmp_path):
    from kiosk.web.ratelimit import SqliteStorage

    store = SqliteStorage(f"motcua-sqlite://{tmp_path / 'rl.sqlite'}")
    assert [store.incr("a", 1) for _ in range(3)] == [1, 2, 3]
    assert store.get("a") == 3 and store.get_expiry("a") > 0
    import time as _time

    _time.sleep(1.05)
    assert store.get("a") == 0 and store.incr("a", 60) == 1
    store.clear("a")
    assert store.get("a") == 0 and store.check()


def test_english_catalogue_covers_every_citizen_string(tmp_path):
    """Re-extract the `kiosk` domain: every msgid in code and templates has an English msgstr, and the
    compiled .mo is not older than its .po."""
    import subprocess
    import sys
    from pathlib import Path

    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parent.parent
    pot = tmp_path / "kiosk.pot"
    pybabel = Path(sys.executable).with_name("pybabel")
    subprocess.run([str(pybabel), "-q", "extract", "-F", "kiosk/web/babel.cfg", "-k", "_l", "-k", "_t",
                    "-k", "lazy_gettext", "-o", str(pot), "."], cwd=root, check=True)
    wanted = {m.id for m in read_po(pot.open("rb")) if m.id}
    po_path = root / "kiosk/translations/en/LC_MESSAGES/kiosk.po"
    have = {m.id: m.string for m in read_po(po_path.open("rb")) if m.id}
    assert wanted - set(have) == set(), "run the pybabel steps in docs/i18n.md"
    assert [m for m in wanted if not have[m]] == []
    assert po_path.with_suffix(".mo").stat().st_mtime >= po_path.stat().st_mtime - 1


def test_limiter_storage_speaks_the_installed_limits_interface(tmp_path):
    """The installed `limits` finds the storage by its scheme and counts through it with its own strategy."""
    from limits import parse
    from limits.storage import storage_from_string
    from limits.strategies import FixedWindowRateLimiter

    import kiosk.web.ratelimit  # registers the motcua-sqlite:// scheme

    store = storage_from_string(f"{kiosk.web.ratelimit.SCHEME}://{tmp_path / 'rl.sqlite'}")
    limiter = FixedWindowRateLimiter(store)
    three = parse("3 per minute")
    assert [limiter.hit(three, "192.168.1.50") for _ in range(4)] == [True, True, True, False]
    assert limiter.get_window_stats(three, "192.168.1.50").remaining == 0
    assert limiter.hit(three, "192.168.1.51")  # another client has its own window


def test_a_failing_limiter_storage_is_logged_and_lookups_still_answer(make_config, engine, caplog):
    import sqlite3

    cfg = make_config(site={"opening_hours": ALL_WEEK}, kiosk={"public_lookup_rate": "3 per minute"})
    c = create_app(cfg, engine, test_config={"TESTING": True}).test_client()
    assert lookup(c, LAN, code=CODE).status_code == 404
    # Break the counter file for real: another process drops the table the storage writes to.
    with sqlite3.connect(cfg.paths.data_dir / "ratelimit.sqlite") as other:
        other.execute("DROP TABLE counters")
    with caplog.at_level("ERROR", logger="kiosk.web.ratelimit"):
        assert lookup(c, LAN, code=CODE).status_code == 404  # the lookup is still answered
    errors = [r for r in caplog.records if r.name == "kiosk.web.ratelimit" and r.levelname == "ERROR"]
    assert errors and "NOT limited" in errors[0].getMessage() and "no such table" in errors[0].getMessage()
