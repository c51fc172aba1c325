"""The national portal adapter, the generic HTTP JSON source and the drop folder, each against its own
emulator or a real folder; everything they find goes through ingest."""
from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
import time_machine

from kiosk.sources.api import ErrorKind, SourceError, lookup, make_source
from kiosk.sources.cli import check_source
from kiosk.sources.schema import source_checks
from kiosk.sources.store import apply_one, load_state
from kiosk.sources.sync import SyncService
from kiosk.store.ingest import Parser, ingest_batch
from kiosk.store.schema import dossiers
from motcua.db import make_engine
from tests.emulators.dvcqg import DvcqgEmulator
from tests.emulators.http_json import HttpJsonEmulator

CODE = "000.00.21.H42-251125-0007"


def rows(engine):
    with engine.connect() as conn:
        return {r.code: r for r in conn.execute(sa.select(dossiers))}


# --- national portal adapter --------------------------------------------------------------------

@pytest.fixture
def portal():
    with DvcqgEmulator() as e:
        yield e


def portal_config(make_config, emu, **dvcqg):
    return make_config(source={"kind": "dvcqg", "base_url": emu.url, "read_timeout_s": 2.0, "lookup_deadline_s": 1.0,
                               "dvcqg": {"username": emu.username, "password": emu.password, "dstcode": emu.dstcode,
                                         "madonvi": emu.madonvi, **dvcqg}})


def test_portal_lookup_logs_in_with_dstcode_then_asks_tracuuhoso_and_maps_trangthaihoso(make_config, portal):
    cfg = portal_config(make_config, portal)
    engine = make_engine(cfg)
    src = make_source(cfg)
    portal.add(CODE, "9")
    found = src.fetch(CODE, "IGNORED1")
    assert found.record["status"] == "9" and "secret" not in found.record
    assert found.record["appointment_date"] == "2026-12-09"
    assert apply_one(engine, cfg, src, found) == "created"
    assert rows(engine)[CODE].status == "result_ready" and rows(engine)[CODE].secret is None
    assert [p for _, p in portal.requests] == ["/auth", "/integration"]
    assert src.fetch("000.00.21.H42-251125-0404", None) is None
    assert [p for _, p in portal.requests][-1] == "/integration"  # the session is reused
    src.close()


def test_portal_session_expiry_logs_in_again_once(make_config, portal):
    src = make_source(portal_config(make_config, portal))
    portal.add(CODE, "4")
    src.fetch(CODE, None)
    portal.expire_sessions()
    assert src.fetch(CODE, None).record["status"] == "4"
    assert [p for _, p in portal.requests] == ["/auth", "/integration", "/integration", "/auth", "/integration"]
    src.close()


def test_portal_wrong_password_or_dstcode_is_an_auth_error(make_config, portal):
    for bad in ({"password": "sai"}, {"dstcode": "khac"}):
        src = make_source(portal_config(make_config, portal, **bad))
        with pytest.raises(SourceError) as err:
            src.fetch(CODE, None)
        assert err.value.kind == ErrorKind.AUTH and "sai" not in str(err.value)
        src.close()


@pytest.mark.parametrize("fault, kind", [("renamed", ErrorKind.BAD_ANSWER), ("wrong_code", ErrorKind.BAD_ANSWER),
                                         ("html", ErrorKind.REFUSED), ("drop", ErrorKind.UNREACHABLE)])
def test_portal_hostile_answers_write_nothing(make_config, portal, fault, kind):
    cfg = portal_config(make_config, portal)
    engine = make_engine(cfg)
    src = make_source(cfg)
    portal.add(CODE, "9")
    portal.fault = fault
    with pytest.raises(SourceError) as err:
        src.fetch(CODE, None)
    assert err.value.kind == kind
    assert lookup(cfg, engine, src, CODE, None).row is None and rows(engine) == {}
    src.close()


def test_portal_without_a_change_feed_is_followed_by_refreshing_open_dossiers(make_config, portal):
    cfg = portal_config(make_config, portal)
    engine = make_engine(cfg)
    src = make_source(cfg)
    ingest_batch(engine, Parser.from_config(cfg), [
        {"code": CODE, "status": "processing", "phone": "0987654321"},
        {"code": "000.00.21.H42-251125-0008", "status": "handed_over"},  # finished: not asked again
    ], via="import")
    portal.add(CODE, "9")
    report = SyncService(cfg, engine, src).run_pass()
    assert report.complete and report.refreshed == 1 and report.written == 1
    assert rows(engine)[CODE].status == "result_ready"
    assert load_state(engine, "dvcqg").confirmed_at is not None
    ok, sentence = check_source(cfg, src)
    assert ok and sentence.startswith("dvcqg: the adapter accepted the credentials")
    src.close()


def test_portal_refresh_reads_a_bounded_batch_per_pass_longest_unchecked_first(make_config, portal):
    cfg = portal_config(make_config, portal)
    cfg.source_.refresh_batch = 2
    engine = make_engine(cfg)
    src = make_source(cfg)
    codes = [f"000.00.21.H42-251125-01{n:02d}" for n in range(5)]
    ingest_batch(engine, Parser.from_config(cfg), [{"code": c, "status": "processing"} for c in codes], via="import")
    for c in codes:
        portal.add(c, "9")
    service = SyncService(cfg, engine, src)
    ready = []
    with time_machine.travel(datetime.now(timezone.utc), tick=True) as clock:
        for _ in range(3):
            report = service.run_pass()
            assert report.refreshed == 2
            ready.append([c for c in codes if rows(engine)[c].status == "result_ready"])
            if len(ready) == 1:
                assert load_state(engine, "dvcqg").confirmed_at is None  # three never asked yet
            clock.shift(timedelta(minutes=1))
    # never-asked first, then the one asked longest ago (codes[0], which is still open: result ready)
    assert ready == [codes[:2], codes[:4], codes]
    with engine.connect() as conn:
        checks = dict(conn.execute(sa.select(source_checks.c.code, source_checks.c.checked_at)).all())
    assert checks[codes[0]] > checks[codes[1]]  # re-read in the third pass
    assert load_state(engine, "dvcqg").confirmed_at == checks[codes[1]]  # the oldest check among open ones
    src.close()


# --- generic HTTP JSON ------------------------------------------------------------------------

JSON_FIELDS = {"code": "hoSo.ma", "status": "hoSo.trangThai", "procedure": "hoSo.thuTuc",
               "appointment_date": "hoSo.henTra", "source_updated_at": "hoSo.capNhat"}


@pytest.fixture
def jsonsys():
    with HttpJsonEmulator() as e:
        yield e


def json_config(make_config, emu, **http_json):
    section = {"lookup_path": "/api/hoso/{code}", "secret_param": "key", "changes_path": "/api/changes",
               "bearer_token": emu.token, "fields": JSON_FIELDS, **http_json}
    return make_config(source={"kind": "http_json", "base_url": emu.url, "read_timeout_s": 2.0,
                               "http_json": section})


def test_http_json_lookup_follows_the_field_mapping_and_keeps_a_checked_secret(make_config, jsonsys):
    cfg = json_config(make_config, jsonsys)
    engine = make_engine(cfg)
    src = make_source(cfg)
    jsonsys.put(CODE, "releasing", secret="K1234")
    assert src.fetch(CODE, "WRONG9") is None
    found = src.fetch(CODE, "K1234")
    assert found.record["secret"] == "K1234" and found.record["procedure"] == "Chứng thực bản sao"
    assert apply_one(engine, cfg, src, found) == "created" and rows(engine)[CODE].status == "result_ready"
    src.close()


def test_http_json_renamed_field_is_refused_with_the_path_named(make_config, jsonsys):
    src = make_source(json_config(make_config, jsonsys))
    jsonsys.put(CODE, "processing")
    jsonsys.fault = "renamed"
    with pytest.raises(SourceError) as err:
        src.fetch(CODE, None)
    assert err.value.kind == ErrorKind.BAD_ANSWER and "hoSo.trangThai" in err.value.message
    src.close()


def test_http_json_change_feed_is_followed_page_by_page_to_its_end(make_config, jsonsys):
    cfg = json_config(make_config, jsonsys)
    engine = make_engine(cfg)
    src = make_source(cfg)
    for n in range(5):
        jsonsys.put(f"000.00.21.H42-251125-01{n:02d}", "processing")
    report = SyncService(cfg, engine, src).run_pass()
    assert report.complete and report.written == 5 and load_state(engine, "http_json").cursor == "5"
    jsonsys.put("000.00.21.H42-251125-0100", "releasing")
    report = SyncService(cfg, engine, src).run_pass()
    assert report.written == 1 and rows(engine)["000.00.21.H42-251125-0100"].status == "result_ready"
    src.close()


def test_http_json_without_a_feed_refreshes_open_dossiers_and_moves_unknown_ones_to_the_back(make_config, jsonsys):
    cfg = json_config(make_config, jsonsys, changes_path="")
    cfg.source_.refresh_batch = 1
    engine = make_engine(cfg)
    src = make_source(cfg)
    unknown, known_code = "000.00.21.H42-251125-0200", "000.00.21.H42-251125-0201"
    ingest_batch(engine, Parser.from_config(cfg), [{"code": c, "status": "processing"} for c in (unknown, known_code)],
                 via="import")
    jsonsys.put(known_code, "releasing")
    service = SyncService(cfg, engine, src)
    with time_machine.travel(datetime.now(timezone.utc), tick=True) as clock:
        first = service.run_pass()
        clock.shift(timedelta(minutes=1))
        second = service.run_pass()
    assert (first.refreshed, first.written, second.refreshed, second.written) == (1, 0, 1, 1)
    assert rows(engine)[known_code].status == "result_ready" and rows(engine)[unknown].status == "processing"
    assert jsonsys.count("/api/hoso/") == 2 and jsonsys.count("/api/changes") == 0
    src.close()


def test_http_json_wrong_token_is_an_auth_error(make_config, jsonsys):
    src = make_source(json_config(make_config, jsonsys, bearer_token="sai-token"))
    ok, sentence = check_source(json_config(make_config, jsonsys, bearer_token="sai-token"), src)
    assert not ok and "refuses the credentials" in sentence and "sai-token" not in sentence
    src.close()


# --- drop folder ------------------------------------------------------------------------------

HEADER = "Mã hồ sơ,Trạng thái,Thủ tục,Số điện thoại,Ngày hẹn trả\n"


def test_drop_folder_imports_a_settled_export_once_archives_it_and_writes_its_error_report(make_config, tmp_path,
                                                                                          caplog):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    cfg = make_config(source={"kind": "dropfolder", "dropfolder": {"folder": str(inbox), "settle_s": 30}})
    engine = make_engine(cfg)
    src = make_source(cfg)
    export = inbox / "hoso-2511.csv"
    export.write_text(HEADER + f"{CODE},releasing,Đăng ký khai sinh,0912345678,2026-12-09\n"
                      "000.00.21.H42-251125-0009,teleported,Chứng thực,,\n", encoding="utf-8")
    (inbox / "~$hoso-2511.xlsx").write_bytes(b"lock")  # an Office lock file: never read
    service = SyncService(cfg, engine, src)
    assert service.run_pass().listed == 0  # still being copied (newer than settle_s)
    old = time.time() - 60
    os.utime(export, (old, old))
    caplog.set_level(logging.INFO)
    report = service.run_pass()
    assert report.listed == 1 and report.written == 1
    assert rows(engine)[CODE].status == "result_ready" and list(rows(engine)) == [CODE]
    archived = sorted((inbox / "archive").iterdir())
    assert [p.name.split("-", 2)[2] for p in archived] == ["hoso-2511.csv", "hoso-2511.csv.errors.csv"]
    errors = archived[1].read_text(encoding="utf-8-sig")
    assert "000.00.21.H42-251125-0009" in errors and "unknown status" in errors
    assert not export.exists() and (inbox / "~$hoso-2511.xlsx").exists()
    assert service.run_pass().listed == 0  # imported once
    with engine.connect() as conn:
        from sms_gateway.schema import notices

        assert conn.execute(sa.select(sa.func.count()).select_from(notices)).scalar_one() == 1


def test_unreadable_drop_file_is_archived_with_the_reason(make_config, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    cfg = make_config(source={"kind": "dropfolder", "dropfolder": {"folder": str(inbox), "settle_s": 0}})
    src = make_source(cfg)
    (inbox / "broken.xlsx").write_bytes(b"not a workbook")
    done = src.import_pending(make_engine(cfg))
    assert done[0].failed and "not a readable XLSX" in done[0].failed
    report = next((inbox / "archive").glob("*.errors.csv")).read_text(encoding="utf-8-sig")
    assert "not a readable XLSX" in report
    ok, sentence = check_source(cfg, src)
    assert ok and "readable and writable" in sentence
