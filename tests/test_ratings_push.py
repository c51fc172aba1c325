"""Ratings to the provincial system through the OpenCPS voting API, against its emulator: each rating
goes once, with its choice and reasons; a 500 or a hang holds them back with a growing back-off; a push
whose answer was lost is found by its marker, not sent again; staff see the state; sources without a
voting API keep ratings on the kiosk and say so."""
from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from kiosk.ratings.api import PushState, push_due, push_status, record
from kiosk.ratings.schema import ratings
from kiosk.sources.api import ErrorKind, make_source
from kiosk.staff.testing import sign_in
from motcua.cli import AppContext
from motcua.db import make_engine
from tests.emulators.opencps import OpenCpsEmulator

T0 = datetime(2026, 11, 17, 3, 0, tzinfo=timezone.utc)  # 10:00 in Hanoi
POLL_S = 5.0


@pytest.fixture
def emu():
    with OpenCpsEmulator() as e:
        e.add_voting(301)
        yield e


@pytest.fixture
def setup(make_config, emu):
    made = []

    def _setup(voting_id=301, read_timeout_s=2.0, **opencps):
        cfg = make_config(source={
            "kind": "opencps", "base_url": f"{emu.url}/o/rest/v2", "read_timeout_s": read_timeout_s,
            "connect_timeout_s": 1.0, "poll_s": POLL_S, "backoff_max_s": 12.0,
            "opencps": {"group_id": str(emu.group_id), "username": emu.username, "password": emu.password,
                        "voting_id": voting_id, **opencps}})
        engine = make_engine(cfg)
        source = make_source(cfg)
        made.append((engine, source))
        return cfg, engine, source

    yield _setup
    for engine, source in made:
        source.close()
        engine.dispose()


def rate(cfg, engine, score, reasons=(), counter=None, procedure=None):
    with engine.begin() as conn:
        return record(conn, cfg, score, reasons, channel="counter" if counter else "kiosk", counter=counter,
                      procedure=procedure, now=T0)


def states(engine):
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(ratings.c.id, ratings.c.push_state).order_by(ratings.c.id))]


def posts(emu):
    return sum(1 for m, p in emu.requests if m == "POST" and "/votings/" in p)


def test_a_rating_reaches_the_voting_once_with_its_choice_reasons_and_counter(setup, emu):
    cfg, engine, source = setup()
    rid = rate(cfg, engine, 2, ["wait", "attitude"], counter="3", procedure="Đăng ký khai sinh")
    report = push_due(cfg, engine, source, now=T0)
    assert (report.pushed, report.error) == (1, None)
    [stored] = emu.voting_results(301)
    assert stored["selected"] == 4  # score 2 -> the fourth choice, "Không hài lòng"
    assert "Chờ lâu" in stored["comment"] and "Thái độ cán bộ" in stored["comment"]
    assert "Quầy 3" in stored["comment"] and "Đăng ký khai sinh" in stored["comment"]
    assert states(engine) == [(rid, PushState.PUSHED)]
    with engine.connect() as conn:
        row = conn.execute(sa.select(ratings).where(ratings.c.id == rid)).one()
    assert row.push_ref == str(stored["votingResultId"]) and row.pushed_at is not None
    assert f"motcua-{row.push_key}" in stored["comment"]
    assert push_due(cfg, engine, source, now=T0 + timedelta(minutes=1)).pushed == 0
    assert posts(emu) == 1  # never pushed twice


def test_the_push_uses_the_form_fields_basic_auth_and_group_header_opencps_reads(setup, emu, monkeypatch):
    cfg, engine, source = setup()
    seen = []
    real = emu._votings
    monkeypatch.setattr(emu, "_votings", lambda m, p, h, b: (seen.append((m, p, h, b)), real(m, p, h, b))[1])
    rate(cfg, engine, 5)
    push_due(cfg, engine, source, now=T0)
    method, path, headers, body = seen[-1]
    assert (method, path) == ("POST", "/postal/votings/301/results")
    assert headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert headers["groupid"] == str(emu.group_id)
    assert base64.b64decode(headers["authorization"][6:]).decode() == f"{emu.username}:{emu.password}"
    assert b"selected=1" in body and b"email=" in body


def test_a_500_holds_every_unsent_rating_back_and_the_back_off_grows(setup, emu):
    cfg, engine, source = setup()
    first, second = rate(cfg, engine, 4), rate(cfg, engine, 1, ["late"])
    emu.fault, emu.fault_paths = "500", ("/votings/",)
    report = push_due(cfg, engine, source, now=T0)
    assert report.pushed == 0 and "HTTP 500" in report.error and report.held_until == T0 + timedelta(seconds=POLL_S)
    assert posts(emu) == 1  # the second was not tried against a failing system
    held = push_due(cfg, engine, source, now=T0 + timedelta(seconds=1))
    assert held.held_until == T0 + timedelta(seconds=POLL_S) and posts(emu) == 1
    status = push_status(cfg, engine)
    assert status["unsent"] == 2 and "HTTP 500" in status["error"] and status["attempts"] == 1
    later = T0 + timedelta(seconds=POLL_S + 1)
    again = push_due(cfg, engine, source, now=later)  # the lookup before a resend fails too
    assert again.held_until == later + timedelta(seconds=2 * POLL_S)
    emu.fault = None
    done = push_due(cfg, engine, source, now=later + timedelta(seconds=3 * POLL_S))
    assert done.pushed == 2 and done.error is None
    # OpenCPS keeps one answer per account and voting: the second push replaced the first there.
    assert len(emu.voting_results(301)) == 1 and emu.voting_results(301)[0]["selected"] == 5
    assert states(engine) == [(first, PushState.REPLACED), (second, PushState.PUSHED)]
    assert posts(emu) == 3  # one refused with 500, then each rating once


def test_a_hang_is_a_timeout_and_an_answer_lost_after_storing_is_found_not_sent_again(setup, emu):
    cfg, engine, source = setup(read_timeout_s=0.4)
    rid = rate(cfg, engine, 3, ["guidance"])
    emu.fault, emu.fault_paths = "store_then_hang", ("/votings/",)
    report = push_due(cfg, engine, source, now=T0)
    assert "timeout" in report.error and states(engine) == [(rid, PushState.SENDING)]
    assert len(emu.voting_results(301)) == 1  # OpenCPS did store it; only the answer was lost
    emu.fault = None
    found = push_due(cfg, engine, source, now=T0 + timedelta(seconds=POLL_S + 1))
    assert (found.found, found.pushed) == (1, 1) and posts(emu) == 1
    assert states(engine) == [(rid, PushState.PUSHED)] and len(emu.voting_results(301)) == 1


def test_a_hang_before_anything_was_stored_is_sent_again_once(setup, emu):
    cfg, engine, source = setup(read_timeout_s=0.4)
    rid = rate(cfg, engine, 5)
    emu.fault, emu.fault_paths = "hang", ("/votings/",)
    assert push_due(cfg, engine, source, now=T0).error.startswith(str(ErrorKind.TIMEOUT))
    emu.fault = None
    again = push_due(cfg, engine, source, now=T0 + timedelta(seconds=POLL_S + 1))
    assert (again.found, again.pushed) == (0, 1)
    assert len(emu.voting_results(301)) == 1 and states(engine) == [(rid, PushState.PUSHED)]


@pytest.mark.parametrize("case", ["not_stored", "no_voting", "wrong_password"])
def test_an_answer_that_stored_nothing_is_an_error_and_the_rating_stays(setup, emu, case):
    opts = {"password": "wrong"} if case == "wrong_password" else {}
    cfg, engine, source = setup(voting_id=999 if case == "no_voting" else 301, **opts)
    emu.account_is_employee = case != "not_stored"
    rate(cfg, engine, 4)
    report = push_due(cfg, engine, source, now=T0)
    assert report.pushed == 0
    if case == "wrong_password":
        assert report.error.startswith(str(ErrorKind.AUTH)) and "wrong" not in report.error
    else:
        assert "stored nothing" in report.error
    assert push_status(cfg, engine)["unsent"] == 1


def test_sources_without_a_voting_api_keep_ratings_on_the_kiosk_and_staff_are_told(make_config, emu):
    from kiosk.app import create_app

    for source_cfg in ({"kind": "none"}, {"kind": "opencps", "base_url": f"{emu.url}/o/rest/v2"}):
        cfg = make_config(source=source_cfg)  # OpenCPS without a voting_id takes no ratings either
        engine = make_engine(cfg)
        rate(cfg, engine, 5)
        source = make_source(cfg)
        assert push_due(cfg, engine, source, now=T0).local
        assert posts(emu) == 0 and push_status(cfg, engine)["local"]
        app = create_app(cfg, engine, test_config={"TESTING": True})
        page = sign_in(app).get("/staff/ratings").get_data(as_text=True)
        assert 'id="push-local"' in page and "giữ trên máy" in page
        if source:
            source.close()
        engine.dispose()


def test_staff_see_pushed_replaced_and_waiting_ratings_and_the_last_error(setup, emu):
    from kiosk.app import create_app

    cfg, engine, source = setup()
    rate(cfg, engine, 5), rate(cfg, engine, 4)
    push_due(cfg, engine, source, now=T0)
    rate(cfg, engine, 2)
    emu.fault, emu.fault_paths = "500", ("/votings/",)
    push_due(cfg, engine, source, now=T0)
    page = sign_in(create_app(cfg, engine, test_config={"TESTING": True})).get("/staff/ratings").get_data(as_text=True)
    assert 'id="push-status"' in page
    for key, n in (("pushed", 1), ("replaced", 1), ("unsent", 1)):
        assert f'id="push-{key}">{n}<' in page, key
    assert "HTTP 500" in page


def test_the_sync_service_pushes_ratings_after_its_pass(setup, emu):
    from kiosk.sources.cli import sync_command

    cfg, engine, source = setup()
    rate(cfg, engine, 5, counter="1")
    ctx = AppContext(None)
    ctx.__dict__.update(config=cfg, engine=engine)  # the cached properties, already made
    ran = CliRunner().invoke(sync_command, ["--once"], obj=ctx)
    assert ran.exit_code == 0, ran.output
    assert len(emu.voting_results(301)) == 1 and push_status(cfg, engine)["counts"]["pushed"] == 1


def test_kiosk_ratings_push_reports_and_force_ends_the_back_off(setup, emu):
    from kiosk.ratings.cli import push_command

    cfg, engine, source = setup()
    rate(cfg, engine, 3)
    emu.fault, emu.fault_paths = "500", ("/votings/",)
    ctx = AppContext(None)
    ctx.__dict__.update(config=cfg, engine=engine)
    failed = CliRunner().invoke(push_command, [], obj=ctx)
    assert failed.exit_code == 1 and "HTTP 500" in failed.output
    emu.fault = None
    held = CliRunner().invoke(push_command, [], obj=ctx)
    assert held.exit_code == 0 and "held back" in held.output and posts(emu) == 1
    forced = CliRunner().invoke(push_command, ["--force"], obj=ctx)
    assert forced.exit_code == 0 and "1 pushed" in forced.output and len(emu.voting_results(301)) == 1


def test_the_service_loop_pushes_after_every_pass_even_one_that_failed(setup, emu):
    from kiosk.sources.sync import SyncService

    cfg, engine, source = setup()
    rate(cfg, engine, 4)
    emu.fault, emu.fault_paths = "500", ("/dossiers",)  # the dossier sync fails, the voting API answers
    service = SyncService(cfg, engine, source, after_pass=lambda: push_due(cfg, engine, source))
    service.run(passes=1)
    assert len(emu.voting_results(301)) == 1 and push_status(cfg, engine)["counts"]["pushed"] == 1
