"""Issue 17, a hostile hall: what an attacker at the kiosk or on the LAN tried, each answered with a
clear 4xx, a limit or a refusal instead of a 500, a flood or a forged record."""
from __future__ import annotations

import json
import subprocess
import unicodedata
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from kiosk.app import create_app
from kiosk.staff.testing import csrf_token, lan_client
from kiosk.store.ingest import Parser, ingest_batch
from kiosk.store.schema import dossiers, ingest_runs
from kiosk.web.ratelimit import SCHEME, SqliteStorage
from motcua.textnorm import clean_text, is_code
from tests.conftest import CHEAP_HASHING, TOKEN

ALL_WEEK = [{"days": [0, 1, 2, 3, 4, 5, 6], "open": "00:00", "close": "00:00"}]
CODE = "000.00.21.H42-251125-0001"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def hall(make_config, engine):
    cfg = make_config(site={"opening_hours": ALL_WEEK}, staff=CHEAP_HASHING)
    app = create_app(cfg, engine, test_config={"TESTING": True})
    report = ingest_batch(engine, Parser.from_config(cfg), [
        {"code": CODE, "secret": "ABC234", "procedure": "Đăng ký khai sinh", "applicant_name": "Nguyễn Văn Hùng",
         "status": "processing", "appointment_date": (date.today() + timedelta(days=4)).isoformat()},
    ], via="api")
    assert not report.errors
    return app


def ingest(client, body: bytes | str):
    return client.post("/api/v1/dossiers", data=body, headers=AUTH, content_type="application/json")


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(table))


# --- case 5: a 4xx for every bad input -----------------------------------------------------------

def test_ingest_refuses_a_five_thousand_digit_version_with_400(hall, engine):
    body = '[{"code": "HS-2025-0001", "status": "processing", "source_version": 1' + "0" * 5000 + "}]"
    r = ingest(hall.test_client(), body)
    assert r.status_code == 400 and "digits" in r.json["error"]
    assert _count(engine, ingest_runs) == 1  # only the fixture's batch


def test_ingest_refuses_deep_nesting_with_400_without_recursing(hall):
    r = ingest(hall.test_client(), "[" * 100_000 + "]" * 100_000)
    assert r.status_code == 400 and "nested deeper" in r.json["error"]
    r = ingest(hall.test_client(), '{"dossiers": [{"code": "HS-2025-0001", "status": "new", "procedure": "[[[[{{{{"}]}')
    assert r.status_code == 200, r.json  # brackets inside strings are text, not nesting


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00", "9999-12-31T23:59:59-05:00", "0001-01-01"])
def test_ingest_refuses_dates_in_year_one_or_9999_with_422(hall, engine, when):
    for field_name in ("received_at", "source_updated_at", "appointment_date"):
        body = json.dumps([{"code": "HS-2025-0002", "status": "processing", field_name: when}])
        r = ingest(hall.test_client(), body)
        assert r.status_code == 422, (field_name, r.status_code, r.get_data(as_text=True)[:300])
        assert "outside 1900-2200" in r.json["error"]
    assert _count(engine, dossiers) == 1


@pytest.mark.parametrize("path", ["/sms", "/slip", "/sms/phone"])
@pytest.mark.parametrize("form", [{"code": "HS-9999-0000"}, {"code": "<unreadable>"}, {"payload": "x" * 700}])
def test_kiosk_actions_with_an_unknown_or_unreadable_code_answer_4xx(hall, path, form):
    r = hall.test_client().post(path, data={**form, "phone": "0912345678", "consent": "yes"})
    assert r.status_code in (400, 404), r.status_code
    assert "sự cố" not in r.get_data(as_text=True)  # not the crash screen


def test_sign_in_with_cr_lf_in_next_redirects_safely(hall):
    from kiosk.staff.testing import create_account

    name, password = create_account(hall)
    client = lan_client(hall)
    r = client.post("/staff/login", data={"username": name, "password": password,
                                          "next": "/staff/notices\r\nSet-Cookie: x=1",
                                          "csrf_token": csrf_token(client)})
    assert r.status_code == 302
    assert r.headers["Location"] == "/staff/dossiers" and "Set-Cookie: x" not in str(r.headers)


# --- case 7: Unicode ------------------------------------------------------------------------------

def test_clean_text_is_nfc_without_bidi_or_zero_width_characters():
    nfd = unicodedata.normalize("NFD", "Lê Thị Hằng")
    assert nfd != "Lê Thị Hằng" and clean_text(nfd) == "Lê Thị Hằng"
    assert clean_text("ảnh\u202egnp.exe") == "ảnhgnp.exe"
    assert clean_text("Ng\u200buy\u200d\u2066ễn\ufeff") == "Nguyễn"
    assert is_code(CODE) and not is_code("000.00.21.H42\u200b-251125-0001")
    assert not is_code("НS-2025-0001")  # Cyrillic Н looks like Latin H
    assert not is_code('=HYPERLINK("http://evil.example","x")')


def test_ingest_stores_names_as_nfc_without_bidi_controls_and_refuses_such_codes(hall, engine):
    body = json.dumps([{"code": "HS-2025-0003", "status": "processing",
                        "applicant_name": unicodedata.normalize("NFD", "Lê Thị Hằng"),
                        "procedure": "Cấp bản sao \u202egnp.exe"}])
    assert ingest(hall.test_client(), body).status_code == 200
    with engine.connect() as conn:
        row = conn.execute(sa.select(dossiers).where(dossiers.c.code == "HS-2025-0003")).mappings().one()
    assert row["applicant_name"] == "Lê Thị Hằng" and row["procedure"] == "Cấp bản sao gnp.exe"
    for code in ("HS-2025\u200b-0004", "HS-2025-0004\u202e", "НS-2025-0004"):
        r = ingest(hall.test_client(), json.dumps([{"code": code, "status": "processing"}]))
        assert r.status_code == 422 and r.json["errors"][0]["field"] == "code"


def test_staff_search_finds_a_name_that_arrived_decomposed(hall, engine):
    from kiosk.staff.testing import sign_in

    body = json.dumps([{"code": "HS-2025-0005", "status": "processing",
                        "applicant_name": unicodedata.normalize("NFD", "Trần Thị Hằng")}])
    assert ingest(hall.test_client(), body).status_code == 200
    staff = sign_in(hall)
    html = staff.get("/staff/dossiers", query_string={"q": "Hằng"}).get_data(as_text=True)
    assert "HS-2025-0005" in html
    html = staff.get("/staff/dossiers", query_string={"q": unicodedata.normalize("NFD", "Hằng")}).get_data(as_text=True)
    assert "HS-2025-0005" in html  # a decomposed query (a Mac keyboard) finds it too


def test_kiosk_lookup_ignores_zero_width_characters_a_scanner_adds(hall):
    r = hall.test_client().post("/lookup", data={"code": "\u200b" + CODE + "\u2060"})
    assert r.status_code == 200 and "Đăng ký khai sinh" in r.get_data(as_text=True)


# --- case 12: start-up race ----------------------------------------------------------------------

def _boot_limiter_storage(path: str, barrier, results) -> None:
    barrier.wait()
    try:
        SqliteStorage(f"{SCHEME}://{path}").incr("lookup/127.0.0.1", 60)
        results.put("ok")
    except Exception as exc:  # the failure is the finding: report it to the test
        results.put(repr(exc))


def test_workers_setting_up_the_rate_limit_file_at_once_all_boot(tmp_path):
    """Two gunicorn workers on a fresh data folder: on the old code about 1 boot in 50 got
    "database is locked". Repeated until every round has finished, whatever the machine's speed."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    failures = []
    for round_no in range(120):
        path = tmp_path / f"round{round_no}" / "ratelimit.sqlite"
        barrier, results = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_boot_limiter_storage, args=(str(path), barrier, results)) for _ in range(2)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(60)
        failures += [o for o in outcomes if o != "ok"]
    assert failures == []


def test_kiosk_serve_with_four_workers_boots_on_a_fresh_data_folder(live_server, tmp_path):
    import time
    import urllib.request

    url = live_server(workers=4)
    log = next(tmp_path.glob("server-*.log"))
    deadline = time.monotonic() + 120  # a condition, not a duration: the four workers say they booted
    while log.read_text().count("Booting worker") < 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    for _ in range(8):
        with urllib.request.urlopen(url + "/code", timeout=30) as resp:
            assert resp.status == 200
    text = log.read_text()
    assert text.count("Booting worker") >= 4
    assert "Worker failed to boot" not in text and "database is locked" not in text


# --- cases 1 and 10: limits at the kiosk screen ---------------------------------------------------

@pytest.fixture
def still_clock():
    """One still instant (mid-morning in the hall): fixed-window counts cannot straddle a window."""
    from datetime import UTC, datetime

    import time_machine

    with time_machine.travel(datetime(2026, 12, 7, 3, 0, 10, tzinfo=UTC), tick=False) as traveller:
        yield traveller


def _limited_hall(make_config, engine, **kiosk):
    cfg = make_config(site={"opening_hours": ALL_WEEK}, staff=CHEAP_HASHING, kiosk=kiosk)
    app = create_app(cfg, engine, test_config={"TESTING": True})
    ingest_batch(engine, Parser.from_config(cfg), [{"code": CODE, "status": "processing"}], via="api")
    return app


def test_a_gadget_at_the_screen_gets_only_the_station_ticket_rate(make_config, engine, still_clock):
    from kiosk.queue.schema import queue_tickets

    app = _limited_hall(make_config, engine, station_ticket_rate="12 per minute")
    client = app.test_client()
    codes = [client.post("/ticket", data={"service": "HT"}).status_code for _ in range(40)]
    assert codes == [200] * 12 + [429] * 28
    html = client.post("/ticket", data={"service": "HT"}).get_data(as_text=True)
    assert "Máy vừa phát nhiều số liên tiếp" in html
    json_answer = client.post("/queue/tickets", json={"service": "HT"})
    assert json_answer.status_code == 429 and json_answer.json["error"] == "too_many"
    assert _count(engine, queue_tickets) == 12
    still_clock.shift(61)  # the next minute: numbers again
    assert client.post("/ticket", data={"service": "HT"}).status_code == 200


def test_numbering_never_runs_past_its_digits_and_the_official_is_told(make_config, engine, still_clock, caplog):
    from kiosk.queue.schema import queue_tickets

    cfg = make_config(site={"opening_hours": ALL_WEEK}, staff=CHEAP_HASHING, queue={"number_digits": 1},
                      kiosk={"station_ticket_rate": "1000 per minute"})
    app = create_app(cfg, engine, test_config={"TESTING": True})
    client = app.test_client()
    codes = [client.post("/queue/tickets", json={"service": "DD", "print": False}).status_code for _ in range(11)]
    assert codes == [201] * 9 + [503, 503]
    with engine.connect() as conn:
        labels = [r.label for r in conn.execute(sa.select(queue_tickets.c.label).order_by(queue_tickets.c.id))]
    assert labels == [f"B{i}" for i in range(1, 10)]  # never "B10"
    html = client.post("/ticket", data={"service": "DD"}).get_data(as_text=True)
    assert "Đã hết số thứ tự của dịch vụ này hôm nay" in html and "báo cán bộ" in html
    assert "numbers are used up" in caplog.text
    from kiosk.health import check_limits

    check = check_limits(cfg)
    assert check["state"] == "warning" and check["data"]["numbers"] == 3


def test_tickets_waiting_per_service_are_capped(make_config, engine, still_clock):
    cfg = make_config(site={"opening_hours": ALL_WEEK}, staff=CHEAP_HASHING, queue={"max_waiting": 5},
                      kiosk={"station_ticket_rate": "1000 per minute"})
    client = create_app(cfg, engine, test_config={"TESTING": True}).test_client()
    codes = [client.post("/queue/tickets", json={"service": "HT", "print": False}).status_code for _ in range(7)]
    assert codes == [201] * 5 + [503, 503]
    assert client.post("/queue/tickets", json={"service": "HT"}).json["error"] == "too_many_waiting"
    assert client.post("/queue/tickets", json={"service": "DD", "print": False}).status_code == 201


def test_slips_per_dossier_are_limited_and_double_taps_are_not_counted(make_config, engine, still_clock):
    from kiosk.printing.schema import print_jobs

    app = _limited_hall(make_config, engine, slip_rate="3 per 10 minutes")
    client = app.test_client()
    answers = []
    for i in range(30):  # 30 taps 16 s apart: past the 15 s double-tap window, inside 10 minutes
        still_clock.shift(16)
        answers.append(client.post("/slip", data={"code": CODE, "request_key": f"{i:032x}"}).get_data(as_text=True))
    assert ["Đang in phiếu" in a for a in answers] == [True] * 3 + [False] * 27
    assert all("vừa được in" in a for a in answers[3:])
    again = client.post("/slip", data={"code": CODE, "request_key": f"{0:032x}"}).get_data(as_text=True)
    assert "Đang in phiếu" in again  # a repeated tap of a page already printed is that slip, not refused
    with engine.connect() as conn:
        slips = conn.scalar(sa.select(sa.func.count()).select_from(print_jobs).where(print_jobs.c.kind == "slip"))
    assert slips == 3


def test_lookups_from_the_screen_have_a_generous_station_limit(make_config, engine, still_clock):
    app = _limited_hall(make_config, engine, station_lookup_rate="60 per minute")
    client = app.test_client()
    codes = [client.post("/lookup", data={"code": CODE, "source": "wedge"}).status_code for _ in range(200)]
    assert codes[:60] == [200] * 60 and set(codes[60:]) == {429}
    assert "Bạn đã tra cứu quá nhiều lần" in client.post("/lookup", data={"code": CODE}).get_data(as_text=True)
    from kiosk.health import check_limits

    assert check_limits(app.config["MOTCUA"])["data"]["lookup"] == 141


# --- cases 2, 3 and 6: a bounded importer ---------------------------------------------------------

HEADER = "Mã hồ sơ,Trạng thái,Ngày hẹn trả,Người nộp\n"


def _csv(path, rows):
    path.write_bytes(HEADER.encode() + b"".join(rows))
    return path


def _runs(engine):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(ingest_runs).order_by(ingest_runs.c.id)).mappings()]


def test_an_xlsx_whose_shared_strings_unzip_too_far_is_refused_before_opening(make_config, engine, tmp_path):
    import zipfile

    from openpyxl import Workbook

    from kiosk.importer import ImportFileError, import_file

    cfg = make_config({"import": {"max_shared_strings_mb": 1, "max_xlsx_mb": 4}})
    wb = Workbook()
    wb.active.append(["Mã hồ sơ", "Trạng thái"])
    wb.active.append(["HS-2025-0001", "processing"])
    plain = tmp_path / "plain.xlsx"
    wb.save(plain)
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            if item.filename != "xl/sharedStrings.xml":
                dst.writestr(item, src.read(item))
        dst.writestr("xl/sharedStrings.xml", '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                     + "<si><t>" + "A" * (2 * 2**20) + "</t></si></sst>")
    assert bomb.stat().st_size < 100_000  # a small file that unzips to megabytes
    with pytest.raises(ImportFileError, match="max_shared_strings_mb"):
        import_file(engine, cfg, bomb)
    assert _runs(engine) == [] and _count(engine, dossiers) == 0
    report, errors = import_file(engine, cfg, plain)
    assert report.created == 1 and errors.total == 0


def test_row_errors_stream_to_the_report_and_only_the_first_thousand_stay_in_memory(make_config, engine, tmp_path):
    import csv

    from kiosk.importer import KEPT_ERRORS, import_file

    src = _csv(tmp_path / "bad.csv", [f"HS-2025-{i:06d},khong-co-trang-thai,,\n".encode() for i in range(5000)])
    out = tmp_path / "errors.csv"
    report, errors = import_file(engine, make_config(), src, errors_path=out)
    assert errors.total == 5000 and len(errors) == KEPT_ERRORS == len(report.errors)
    with out.open(encoding="utf-8-sig") as fh:
        assert sum(1 for _ in csv.reader(fh)) == 5001
    assert _runs(engine)[-1]["errors"] == 5000


def test_a_year_one_date_at_row_1100_is_a_row_error_and_the_run_is_recorded(make_config, engine, tmp_path):
    from kiosk.importer import import_file

    rows = [f"HS-2025-{i:06d},processing,{'0001-01-01' if i == 1099 else '2026-01-05'},Lan\n".encode()
            for i in range(1200)]
    report, errors = import_file(engine, make_config(), _csv(tmp_path / "dates.csv", rows))
    assert report.created == 1199 and errors.total == 1
    assert errors[0].row == 1101 and errors[0].field == "appointment_date" and "year 1" in errors[0].error
    run = _runs(engine)[-1]
    assert run["created"] == 1199 and run["errors"] == 1 and run["failure"] is None


def test_a_non_utf8_byte_at_row_3000_is_that_rows_error(make_config, engine, tmp_path):
    from kiosk.importer import import_file

    rows = [f"HS-2025-{i:06d},processing,,Lan\n".encode() for i in range(3200)]
    rows[2998] = b"HS-2025-002998,processing,,Tr\xe2n\n"  # Windows-1258 'Trần' cut: not UTF-8
    report, errors = import_file(engine, make_config(), _csv(tmp_path / "bytes.csv", rows))
    assert report.created == 3199 and errors.total == 1
    assert errors[0].row == 3000 and "byte 0xE2" in errors[0].error and "Người nộp" in errors[0].error


def test_an_unexpected_failure_still_records_the_run_and_exits_3(make_config, engine, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from kiosk import importer
    from kiosk.cli import cli

    cfg = make_config({"import": {"batch_rows": 100}})
    path = tmp_path / "cli.toml"
    path.write_text(f'[paths]\ndata_dir = "{cfg.paths.data_dir}"\n[import]\nbatch_rows = 100\n', encoding="utf-8")
    src = _csv(tmp_path / "ok.csv", [f"HS-2025-{i:06d},processing,,Lan\n".encode() for i in range(1000)])
    real, calls = importer.apply_events, []

    def failing(conn, events, **kw):
        calls.append(len(events))
        if len(calls) == 4:
            raise RuntimeError("disk I/O error")
        return real(conn, events, **kw)

    monkeypatch.setattr(importer, "apply_events", failing)
    result = CliRunner().invoke(cli, ["--config", str(path), "import", str(src)])
    assert result.exit_code == importer.EXIT_ABORTED == 3, result.output
    assert "STOPPED at row" in result.output
    run = _runs(engine)[-1]
    assert run["created"] == 300 and run["stopped_at_row"] == 401 and "disk I/O error" in run["failure"]
    assert _count(engine, dossiers) == 300


def test_formula_codes_are_refused_and_report_cells_are_escaped(make_config, engine, tmp_path):
    import csv

    from kiosk.importer import import_file, report_cell

    rows = ['"=HYPERLINK(""http://evil.example"",""x"")",processing,,Lan\n'.encode(),
            b"+84912345678,processing,,Lan\n", b"@SUM(A1),processing,,Lan\n",
            b"HS-2025-000001,=cmd|' /C calc'!A0,,Lan\n"]
    out = tmp_path / "errors.csv"
    report, errors = import_file(engine, make_config(), _csv(tmp_path / "formula.csv", rows), errors_path=out)
    assert report.created == 0 and errors.total == 4
    assert {e.field for e in errors} == {"code", "status"}
    with out.open(encoding="utf-8-sig") as fh:
        cells = [c for row in list(csv.reader(fh))[1:] for c in row]
    assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells), cells
    assert "'=HYPERLINK(\"http://evil.example\",\"x\")" in cells
    assert report_cell("-1") == "'-1" and report_cell("HS-1") == "HS-1"


# --- cases 8 and 9: SMS ----------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["ascii", "ucs2"])
def test_dossier_data_in_an_sms_is_one_line_capped_and_never_a_link(make_config, encoding):
    from sms_gateway.text import render_notice

    cfg = make_config(sms={"encoding": encoding, "max_parts": 6})
    for procedure in ["Cấp bản sao\nBAM http://evil.example/pay de nhan ket qua",
                      "Khai sinh\r\nvao evil.example/pay", "Khai tu WWW.EVIL.EXAMPLE\u202e", "A" * 5000]:
        params = {"code": "HS-2025-0001\nhttps://x.example", "procedure": procedure}
        text = render_notice(cfg, "result_ready", params).text
        assert "\n" not in text and "\r" not in text and "\u202e" not in text
        assert "http" not in text.lower() and "evil.example" not in text.lower() and "x.example" not in text
        assert "A" * 201 not in text
    ok = render_notice(cfg, "result_ready", {"code": CODE, "procedure": "Đăng ký khai sinh"}).text
    assert CODE in ok  # a dossier code is not mistaken for a domain


def test_eight_parallel_sign_ups_save_one_phone_with_history_and_audit(make_config, engine):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from kiosk.staff.models import staff_audit
    from kiosk.store.schema import dossier_history

    cfg = make_config(site={"opening_hours": ALL_WEEK}, staff=CHEAP_HASHING)
    app = create_app(cfg, engine, test_config={"TESTING": True})
    ingest_batch(engine, Parser.from_config(cfg), [{"code": CODE, "secret": "ABC234", "status": "processing"}],
                 via="api")
    start = threading.Barrier(8)

    def sign_up(i: int) -> str:
        client = app.test_client()
        start.wait()
        return client.post("/sms/phone", data={"code": CODE, "secret": "ABC234", "consent": "yes",
                                               "phone": f"091234567{i}"}).get_data(as_text=True)

    with ThreadPoolExecutor(8) as pool:
        pages = list(pool.map(sign_up, range(8)))
    saved = [i for i, page in enumerate(pages) if "Đã lưu số điện thoại" in page]
    assert len(saved) == 1
    assert sum("đã có số điện thoại" in page for page in pages) == 7
    with engine.connect() as conn:
        phone = conn.scalar(sa.select(dossiers.c.phone).where(dossiers.c.code == CODE))
        audits = conn.execute(sa.select(staff_audit).where(staff_audit.c.target == CODE)).mappings().all()
        hist = conn.execute(sa.select(dossier_history).where(dossier_history.c.via == "kiosk")).mappings().all()
    assert phone == f"+8491234567{saved[0]}"  # the one told "saved" is the one kept
    assert len(audits) == 1 and audits[0]["actor"] == "kiosk" and audits[0]["action"] == "dossier_phone"
    assert len(hist) == 1 and "điện thoại" in hist[0]["actor"]


# --- case 11: the kiosk browser's managed policy -------------------------------------------------
# Chromium reads managed policy only from /etc/chromium/policies/managed (no flag moves it). The test
# gives one Chromium its own /etc/chromium in a private mount namespace (unshare; root, or a user
# namespace otherwise), so the policy applies to that browser only, never to the machine's others.

POLICY = Path(__file__).resolve().parent.parent / "hardware" / "chromium-policy.json"


def _policy_for(origin: str, drop: tuple[str, ...] = ()) -> str:
    """The policy as hardware/setup.sh installs it (the same substitution), minus `drop`."""
    text = POLICY.read_text().replace("http://127.0.0.1:8080", origin)
    return json.dumps({k: v for k, v in json.loads(text).items() if k not in drop})


def _chromium(tmp_path: Path, policy: str, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    import os
    import tempfile

    etc = Path(tempfile.mkdtemp(dir=tmp_path))
    (etc / "policies" / "managed").mkdir(parents=True)
    (etc / "policies" / "managed" / "motcua-kiosk.json").write_text(policy)
    profile = tempfile.mkdtemp(dir=tmp_path)
    userns = [] if os.geteuid() == 0 else ["--map-root-user"]
    script = 'mount --bind "$0" /etc/chromium && exec "$@"'
    return subprocess.run(["unshare", "--mount", "--propagation", "private", *userns, "sh", "-c", script, str(etc),
                           "/usr/bin/chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update",
                           f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=timeout)


def test_chromium_with_the_kiosk_policy_cannot_leave_the_local_origin(live_server, tmp_path):
    import threading
    from http.server import HTTPServer, SimpleHTTPRequestHandler

    kiosk = live_server()
    other = HTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)  # another origin on this machine
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        # --dump-dom reads the page through DevTools, which the full policy switches off (checked below).
        policy = _policy_for(kiosk, drop=("DeveloperToolsAvailability", "RemoteDebuggingAllowed"))
        page = _chromium(tmp_path, policy, "--dump-dom", kiosk + "/code").stdout
        assert "<form" in page and "lookup" in page  # the kiosk's own page opens
        for blocked in (f"http://127.0.0.1:{other.server_port}/", kiosk.replace("127.0.0.1", "localhost") + "/",
                        "http://example.com/", "chrome://version/", "chrome://settings/", "file:///etc/hostname",
                        "devtools://devtools/bundled/inspector.html"):
            dom = _chromium(tmp_path, policy, "--dump-dom", blocked).stdout
            assert "<body" not in dom or "ERR_BLOCKED" in dom, (blocked, dom[:300])
        assert "Directory listing" in _chromium(tmp_path, "{}", "--dump-dom",
                                                 f"http://127.0.0.1:{other.server_port}/").stdout  # control
    finally:
        other.shutdown()
