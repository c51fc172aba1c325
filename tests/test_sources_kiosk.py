"""The kiosk screen asks the provincial system on demand: within the deadline, through ingest, with
the freshness line; from the store when the source is slow or down; the receipt's own QR when
nobody knows the code."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from kiosk.app import create_app
from kiosk.sources.schema import source_checks
from kiosk.store.ingest import Parser, ingest_batch
from kiosk.store.schema import dossier_history, dossiers
from motcua.db import make_engine
from tests.emulators.opencps import OpenCpsEmulator

ALL_WEEK = [{"days": [0, 1, 2, 3, 4, 5, 6], "open": "00:00", "close": "00:00"}]
CODE = "000.00.21.H42-251125-0001"
RECEIPT_PATTERN = r"HS:(?P<code>[^|]+)\|TTHC:(?P<procedure_code>[^|]+)\|HEN:(?P<appointment_date>[0-9/]+)"


@pytest.fixture
def emu():
    with OpenCpsEmulator() as e:
        yield e


@pytest.fixture
def kiosk(make_config, emu):
    cfg = make_config(
        site={"opening_hours": ALL_WEEK}, scanner={"patterns": [RECEIPT_PATTERN]},
        source={"kind": "opencps", "base_url": f"{emu.url}/o/rest/v2", "lookup_deadline_s": 0.5,
                "read_timeout_s": 5.0, "lookup_max_age_s": 300,
                "opencps": {"group_id": str(emu.group_id), "username": emu.username, "password": emu.password}})
    engine = make_engine(cfg)
    app = create_app(cfg, engine, test_config={"TESTING": True})
    yield app, engine, cfg
    engine.dispose()


def lookup(app, **form):
    return app.test_client().post("/lookup", data=form)


def count(engine, table):
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_code_unknown_to_the_store_is_fetched_stored_with_history_and_shown_with_its_freshness(kiosk, emu):
    app, engine, _ = kiosk
    emu.add(CODE, "releasing", secret="AB12CD")
    resp = lookup(app, code=CODE, secret="AB12CD")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Chờ trả kết quả" in html and "Đăng ký khai sinh" in html
    assert 'id="freshness"' in html and "Cập nhật lúc" in html and 'id="source-offline"' not in html
    assert "N***** V** Hùng" in html  # the source accepted the secret, so the name shows masked
    with engine.connect() as conn:
        row = conn.execute(sa.select(dossiers)).mappings().one()
        assert row["status"] == "result_ready" and row["secret"] == "AB12CD"
        assert conn.execute(sa.select(dossier_history.c.via)).scalars().all() == ["source"]


def test_freshness_line_is_translated(kiosk, emu):
    app, _, _ = kiosk
    emu.add(CODE, "processing")
    c = app.test_client()
    html = c.post("/lookup", data={"code": CODE, "lang": "en"}).get_data(as_text=True)
    assert "Updated at" in html and "Cập nhật lúc" not in html


def test_recently_confirmed_dossier_is_answered_from_the_store_without_asking(kiosk, emu):
    app, _, _ = kiosk
    emu.add(CODE, "processing")
    lookup(app, code=CODE)
    asked = emu.count("/dossiers/")
    assert asked == 1
    assert "Đang xử lý" in lookup(app, code=CODE).get_data(as_text=True)
    assert emu.count("/dossiers/") == asked


def test_dossier_confirmed_longer_ago_than_the_max_age_is_asked_again(kiosk, emu):
    app, engine, _ = kiosk
    emu.add(CODE, "processing")
    lookup(app, code=CODE)
    with engine.begin() as conn:
        conn.execute(source_checks.update().values(checked_at=datetime.now(timezone.utc) - timedelta(hours=1)))
    emu.set_status(CODE, "releasing")
    assert "Chờ trả kết quả" in lookup(app, code=CODE).get_data(as_text=True)
    assert emu.count("/dossiers/") == 2


def test_hanging_source_answers_from_the_store_once_the_deadline_passes(kiosk, emu):
    app, engine, cfg = kiosk
    ingest_batch(engine, Parser.from_config(cfg), [{"code": CODE, "status": "processing",
                                                    "procedure": "Đăng ký khai sinh"}], via="import")
    emu.add(CODE, "releasing")
    emu.fault = "hang"
    started = time.monotonic()
    resp = lookup(app, code=CODE)
    elapsed = time.monotonic() - started
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Đang xử lý" in html
    assert 'id="source-offline"' in html and "Cập nhật lúc" in html
    assert elapsed < cfg.source_.lookup_deadline_s + 2.0  # generous: a loaded CI machine, never a spinner


@pytest.mark.parametrize("fault", ["500", "drop", "malformed", "renamed", "html", "huge", "wrong_code"])
def test_failing_source_never_reaches_the_screen_as_an_error(kiosk, emu, fault):
    app, engine, _ = kiosk
    emu.add(CODE, "releasing")
    emu.fault = fault
    resp = lookup(app, code=CODE)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 404 and 'id="not-found"' in html and 'id="source-offline"' in html
    assert "Traceback" not in html and "SourceError" not in html
    assert count(engine, dossiers) == 0


def test_code_nobody_knows_shows_what_the_receipt_qr_carries_marked_as_such(kiosk, emu):
    app, _, _ = kiosk
    resp = lookup(app, payload=f"HS:{CODE}|TTHC:1.001193|HEN:09/12/2026", source="wedge")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 404 and 'id="receipt"' in html
    assert "Thông tin đọc từ mã QR trên giấy tiếp nhận" in html
    assert '<dd id="receipt-procedure">1.001193</dd>' in html and '<dd id="receipt-appointment">09/12/2026</dd>' in html


def test_typed_code_shows_no_receipt_block(kiosk, emu):
    app, _, _ = kiosk
    html = lookup(app, code=CODE).get_data(as_text=True)
    assert 'id="not-found"' in html and 'id="receipt"' not in html


def test_without_a_source_nothing_changes_on_screen(make_config):
    cfg = make_config(site={"opening_hours": ALL_WEEK})
    engine = make_engine(cfg)
    ingest_batch(engine, Parser.from_config(cfg), [{"code": CODE, "status": "processing"}], via="import")
    html = create_app(cfg, engine, test_config={"TESTING": True}).test_client().post(
        "/lookup", data={"code": CODE}).get_data(as_text=True)
    assert "Đang xử lý" in html and 'id="freshness"' not in html
    engine.dispose()


def test_source_credentials_never_appear_on_the_settings_page(make_config, emu):
    from kiosk.staff import users
    from tests.conftest import CHEAP_HASHING
    from tests.test_staff import sign_in

    cfg = make_config(staff=CHEAP_HASHING, source={
        "kind": "opencps", "base_url": f"{emu.url}/o/rest/v2",
        "opencps": {"group_id": "35417", "username": "kiosk", "password": "mat-khau-tinh-987"},
        "dvcqg": {"password": "mat-khau-cong-654"}, "http_json": {"bearer_token": "token-json-321"}})
    app = create_app(cfg, make_engine(cfg), test_config={"TESTING": True})
    body = sign_in(app, role=users.ADMIN).get("/staff/settings").get_data(as_text=True)
    assert "opencps.group_id" in body
    for secret in ("mat-khau-tinh-987", "mat-khau-cong-654", "token-json-321"):
        assert secret not in body
