"""Device health: the plain gathering functions (no Flask), /healthz without personal data, the page."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from kiosk import health
from kiosk.staff.testing import csrf_token, sign_in
from kiosk.store.ingest import DossierEvent, apply_event
from kiosk.store.schema import ingest_runs
from motcua.timeutil import utcnow
from sms_gateway.health import write_modem_health
from sms_gateway.schema import notices
from tests.conftest import CHEAP_HASHING

# Health ages (last ingest, modem last seen) are measured from now.
pytestmark = pytest.mark.clock


@pytest.fixture
def config(make_config):
    return make_config(staff=CHEAP_HASHING)


CHECK_NAMES = {"database", "disk", "last_ingest", "source", "camera", "printer", "modem", "outbox", "limits"}
NAME, PHONE, PHONE_NATIONAL = "Nguyễn Văn Hùng", "+84912345678", "0912345678"


def _by_name(report):
    return {c["name"]: c for c in report["checks"]}


def test_gather_runs_without_a_flask_app_and_reports_each_part(config, engine):
    report = health.gather(config, engine)  # no app, no request context: `kiosk doctor` calls it like this
    checks = _by_name(report)
    assert set(checks) == CHECK_NAMES
    assert checks["database"]["state"] == "ok" and checks["database"]["data"]["quick_check"] is True
    assert checks["disk"]["state"] == "ok" and checks["disk"]["data"]["free_mb"] > 0
    assert checks["last_ingest"]["state"] == "warning"  # nothing received yet
    assert checks["camera"]["state"] == "error"  # no scanner running in this test
    assert checks["modem"]["state"] == "unknown"  # the gateway never ran
    assert report["status"] == "error"


def test_each_part_moves_between_ok_warning_and_error(make_config):
    from kiosk.scanner.status import write_status
    from motcua.db import make_engine

    cfg = make_config(staff={"disk_warn_mb": 10**9, "ingest_stale_hours": 1})
    engine = make_engine(cfg)
    write_status(cfg, "ok", "camera 0 at 640x480")
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(ingest_runs.insert().values(via="api", started_at=now, finished_at=now - timedelta(hours=3)))
        write_modem_health(conn, state="ok", sim="ready", registered=True, network="Viettel", signal_percent=70,
                           balance_low=True, balance_text="TKC 4.000d", last_seen_at=now)
    checks = _by_name(health.gather(cfg, engine))
    assert checks["camera"]["state"] == "ok"
    assert checks["disk"]["state"] == "warning"
    assert checks["last_ingest"]["state"] == "warning" and checks["last_ingest"]["data"]["age_hours"] == 3.0
    assert checks["modem"]["state"] == "warning" and "TKC 4.000d" in checks["modem"]["detail"]
    with engine.begin() as conn:
        write_modem_health(conn, state="no_network", registered=False, balance_low=False, last_seen_at=now)
        conn.execute(ingest_runs.insert().values(via="api", started_at=now, finished_at=now))
    checks = _by_name(health.gather(cfg, engine))
    assert checks["modem"]["state"] == "error" and checks["last_ingest"]["state"] == "ok"
    with engine.begin() as conn:  # the gateway stopped writing its heartbeat
        write_modem_health(conn, state="ok", last_seen_at=now - timedelta(hours=1))
    assert "not running" in _by_name(health.gather(cfg, engine))["modem"]["detail"]


def test_a_broken_check_does_not_hide_the_others(config, engine, monkeypatch):
    def boom(cfg, eng):
        raise RuntimeError("driver bug")

    monkeypatch.setattr(health, "GATHERERS", (boom, health.check_disk))
    report = health.gather(config, engine)
    assert [c["state"] for c in report["checks"]] == ["error", "ok"] and report["status"] == "error"


def test_healthz_answers_anyone_with_states_and_numbers_but_no_personal_data(client, engine):
    now = utcnow()
    with engine.begin() as conn:
        apply_event(conn, DossierEvent(code="HS-9", status="result_ready", applicant_name=NAME, phone=PHONE_NATIONAL),
                    via="test")
        conn.execute(notices.update().values(state="failed", last_error=f"CMS 21 rejected for {PHONE}"))
        write_modem_health(conn, state="ok", sim="ready", registered=True, signal_percent=55, last_seen_at=now,
                           detail=f"last send to {PHONE}", balance_text="TKC 50.000d")
    resp = client.get("/healthz")  # the test client is 127.0.0.1, the kiosk screen: /healthz is not a staff page
    assert resp.status_code in (200, 503)
    body = resp.get_data(as_text=True)
    doc = json.loads(body)
    assert doc["status"] in ("ok", "warning", "error") and set(doc["checks"]) == CHECK_NAMES
    assert doc["checks"]["modem"]["signal_percent"] == 55 and doc["checks"]["outbox"]["counts"]["failed"] == 1
    for secret in (NAME, PHONE, PHONE_NATIONAL, "912345678", "HS-9", "TKC", "detail"):
        assert secret not in body
    assert resp.headers["Cache-Control"] == "no-store"


def test_healthz_is_503_when_a_part_is_broken(make_config):
    from kiosk.app import create_app
    from motcua.db import make_engine

    cfg = make_config(staff={"disk_error_mb": 10**9})
    app = create_app(cfg, make_engine(cfg), test_config={"TESTING": True})
    resp = app.test_client().get("/healthz")
    assert resp.status_code == 503 and resp.get_json()["checks"]["disk"]["state"] == "error"


def test_staff_health_page_shows_the_details(app, engine):
    with engine.begin() as conn:
        write_modem_health(conn, state="ok", sim="ready", registered=True, network="Viettel", signal_percent=42,
                           balance_low=False, last_seen_at=utcnow())
    client = sign_in(app)
    body = client.get("/staff/health").get_data(as_text=True)
    for text in ("Modem SMS", "Hoạt động bình thường", "Viettel", "42%",
                 "Dung lượng lưu trữ", "Cơ sở dữ liệu", "kiểm tra tệp (quick_check) đạt",
                 "Lần nhận dữ liệu gần nhất", "Camera quét mã", "Máy in phiếu"):
        assert text in body, text
    full = client.get("/staff/health.json").get_json()
    assert _by_name(full)["database"]["detail"] == "answers; quick_check ok"


# kiosk/health.py's English sentences (for `kiosk doctor` and the JSON): none may reach the page.
DOCTOR_WORDS = ("answers", "MB free of", "no dossier data received yet", "last ingest finished", "need an official",
                "today:", "over the station limits", "no source configured", "the SMS gateway has never run", "180 min",
                "in step", "failed pass(es)", "modems sending")


def test_staff_health_page_says_every_check_in_vietnamese_then_in_english_on_request(make_config):
    from kiosk.app import create_app
    from kiosk.sources.schema import source_sync
    from motcua.db import make_engine

    cfg = make_config(staff=CHEAP_HASHING,
                      source={"kind": "opencps", "base_url": "http://127.0.0.1:9/o/rest/v2"})
    engine = make_engine(cfg)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(ingest_runs.insert().values(via="api", started_at=now, finished_at=now - timedelta(hours=2)))
        conn.execute(source_sync.insert().values(kind="opencps", confirmed_at=now - timedelta(hours=3),
                                                 last_success_at=now - timedelta(hours=3), errors_in_row=4,
                                                 last_error="unreachable: ConnectError: refused"))
        for gw in ("a", "b"):
            write_modem_health(conn, gateway=gw, state="ok" if gw == "a" else "no_sim", registered=True,
                               signal_percent=60, last_seen_at=now)
    client = sign_in(create_app(cfg, engine, test_config={"TESTING": True}))
    body = client.get("/staff/health").get_data(as_text=True)
    for text in ("Đủ chỗ lưu trữ", "Lần nhận xong gần nhất cách đây 2.0 giờ",
                 "opencps: đồng bộ lỗi nhiều lần liên tiếp", "180 phút", "1 trên 2 modem đang gửi được",
                 "0 tin cần cán bộ xem", "Hôm nay: 0 lượt lấy số",
                 "Nguyên văn từ thiết bị hoặc dịch vụ"):
        assert text in body, text
    # The devices' own words are shown apart and labelled; everything else is the catalogue's.
    ours = re.sub(r'<span class="muted device-words">.*?</span>', "", body, flags=re.S)
    for words in DOCTOR_WORDS:
        assert words not in ours, words
    client.post("/staff/language", data={"lang": "en", "csrf_token": csrf_token(client, "/staff/health")})
    english = client.get("/staff/health").get_data(as_text=True)
    for text in ("Enough storage space", "Last ingest finished 2.0 hours ago", "opencps: sync failed several times",
                 "180 min", "1 of 2 modems can send", "0 notices for an official to check", "Today: 0 tickets",
                 "Original words of the device or service"):
        assert text in english, text
    assert "Đủ chỗ lưu trữ" not in english and "đồng bộ lỗi" not in english
    engine.dispose()


def test_staff_health_page_names_the_modem_state_in_the_chosen_language(app, engine):
    with engine.begin() as conn:
        write_modem_health(conn, state="no_sim", last_seen_at=utcnow())
    client = sign_in(app)
    assert "Không có SIM" in client.get("/staff/health").get_data(as_text=True)
    client.post("/staff/language", data={"lang": "en", "csrf_token": csrf_token(client, "/staff/health")})
    body = client.get("/staff/health").get_data(as_text=True)
    assert "No SIM card" in body and "Không có SIM" not in body


@pytest.mark.parametrize("written, expected", [
    ("ok", "ok"), ("paper_low", "warning"), ("paper_out", "error"), ("offline", "error"), ("unknown", "unknown"),
])
def test_printer_check_reads_each_state_the_print_worker_writes(config, engine, written, expected):
    from kiosk.printing import jobs
    from kiosk.printing.states import PrinterState

    with engine.begin() as conn:
        jobs.record_state(conn, PrinterState(written), "from the worker")
    check = health.check_printer(config, engine)
    assert check["state"] == expected
    assert check["data"]["paper_low"] is (written == "paper_low")
