"""The sync service against the OpenCPS emulator: incremental passes (list + detail reads only for
what changed), exactly one SMS for a result found ready by polling, resume after a restart, back-off
and health on errors, and the IT check command."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from kiosk.sources.api import make_source
from kiosk.sources.cli import check_source
from kiosk.sources.store import load_state, sync_health
from kiosk.sources.sync import SyncService
from kiosk.store.schema import dossier_history, dossiers
from motcua.db import make_engine
from sms_gateway.gateway import Gateway
from sms_gateway.schema import notices
from tests.emulators.opencps import OpenCpsEmulator
from tests.modem.harness import FAST_SMS

KIOSK = Path(sys.executable).with_name("kiosk")


def code(n: int) -> str:
    return f"000.00.21.H42-251125-{n:04d}"


@pytest.fixture
def emu():
    with OpenCpsEmulator() as e:
        yield e


def source_section(emu, **opencps):
    return {"kind": "opencps", "base_url": f"{emu.url}/o/rest/v2", "read_timeout_s": 2.0, "poll_s": 5.0,
            "backoff_max_s": 30.0,
            "opencps": {"group_id": str(emu.group_id), "username": emu.username, "password": emu.password,
                        **opencps}}


@pytest.fixture
def setup(make_config, emu, tmp_path):
    made = []

    def _setup(**opencps):
        device = tmp_path / "dummy-modem"
        for sub in ("inbox", "outbox", "sent", "error"):
            (device / sub).mkdir(parents=True, exist_ok=True)
        cfg = make_config(source=source_section(emu, **opencps), sms=FAST_SMS,
                          modem={"model": "dummy", "connection": "none", "device": str(device)})
        engine = make_engine(cfg)
        source = make_source(cfg)
        made.append((engine, source))
        return cfg, engine, source

    yield _setup
    for engine, source in made:
        source.close()
        engine.dispose()


def statuses(engine):
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(dossiers.c.code, dossiers.c.status)).all())


def test_a_pass_creates_every_listed_dossier_and_the_next_reads_no_details(setup, emu):
    cfg, engine, source = setup()
    for n in range(1, 6):
        emu.add(code(n), "processing")
    emu.add(code(9), "done")
    report = SyncService(cfg, engine, source).run_pass()
    assert report.complete and report.written == 6
    assert statuses(engine) == {**{code(n): "processing" for n in range(1, 6)}, code(9): "handed_over"}
    details = emu.count("/dossiers/")
    assert details == 6
    SyncService(cfg, engine, source).run_pass()
    assert emu.count("/dossiers/") == details  # nothing changed: lists only


def test_result_found_ready_by_polling_sends_exactly_one_sms_through_the_dummy_modem(setup, emu, tmp_path):
    cfg, engine, source = setup()
    emu.add(code(1), "processing", contactTelNo="0912345678")
    service = SyncService(cfg, engine, source)
    service.run_pass()
    emu.set_status(code(1), "releasing")
    service.run_pass()
    service.run_pass()  # seen again: no second notice
    with engine.connect() as conn:
        rows = conn.execute(sa.select(notices.c.kind, notices.c.dossier_code, notices.c.state)).all()
        history = conn.execute(sa.select(dossier_history.c.to_status)).scalars().all()
    assert [tuple(r) for r in rows] == [("result_ready", code(1), "queued")]
    assert history == ["processing", "result_ready"]
    gw = Gateway(cfg, engine)
    gw.run(until_idle=True)
    assert gw.stats["sent"] == 1
    with engine.connect() as conn:
        assert conn.execute(sa.select(notices.c.state)).scalars().all() == ["sent"]


def test_restart_resumes_at_the_saved_page_without_reading_everything_again(setup, emu):
    cfg, engine, source = setup(page_size=2)
    for n in range(1, 6):
        emu.add(code(n), "processing")
    first = SyncService(cfg, engine, source).run_pass(max_pages=1)
    assert not first.complete and first.written == 2
    assert json.loads(load_state(engine, "opencps").cursor)["start"] == 2
    # a new process, as after a restart
    restarted = SyncService(cfg, engine, make_source(cfg))
    report = restarted.run_pass()
    assert report.complete and report.written == 3
    assert emu.count("/dossiers/") == 5  # each dossier read in detail once
    assert load_state(engine, "opencps").confirmed_at is not None


def test_errors_back_off_and_are_recorded_for_the_health_page_without_credentials(setup, emu):
    cfg, engine, source = setup()
    emu.add(code(1), "processing")
    emu.fault = "500"
    service = SyncService(cfg, engine, source)
    service.run(passes=2)
    state = load_state(engine, "opencps")
    assert state.errors_in_row == 2 and "HTTP 500" in state.last_error and state.cursor is None
    assert [service.delay_after(n) for n in (0, 1, 2, 3, 4, 5)] == [5.0, 5.0, 10.0, 20.0, 30.0, 30.0]
    health = sync_health(cfg, engine)
    assert health["state"] in ("warning", "error") and emu.password not in json.dumps(health)
    emu.fault = None
    service.run(passes=1)
    health = sync_health(cfg, engine)
    assert health["state"] == "ok" and health["data"]["errors_in_row"] == 0 and health["data"]["lag_s"] is not None
    assert statuses(engine) == {code(1): "processing"}


def test_renamed_list_fields_write_nothing_and_keep_the_cursor(setup, emu):
    cfg, engine, source = setup()
    emu.add(code(1), "processing")
    emu.fault = "renamed"
    SyncService(cfg, engine, source).run(passes=1)
    state = load_state(engine, "opencps")
    assert state.errors_in_row == 1 and "bad_answer" in state.last_error and state.cursor is None
    assert statuses(engine) == {}


def test_one_malformed_detail_is_skipped_and_the_others_are_written(setup, emu, caplog):
    cfg, engine, source = setup()
    emu.add(code(1), "processing")
    bad = emu.add(code(2), "processing")
    bad.dueDate = None
    emu.fault, emu.fault_paths = "malformed", (f"/dossiers/{bad.dossierId}",)
    report = SyncService(cfg, engine, source).run_pass()
    assert report.complete and report.written == 1 and report.refused == 1
    assert statuses(engine) == {code(1): "processing"}
    assert any(code(2) in r.getMessage() and "not JSON" in r.getMessage() for r in caplog.records)


def test_staff_health_page_shows_the_sync_row(setup, emu):
    from kiosk.app import create_app
    from kiosk.staff import users
    from tests.test_staff import sign_in

    cfg, engine, source = setup()
    emu.add(code(1), "processing")
    SyncService(cfg, engine, source).run_pass()
    app = create_app(cfg, engine, test_config={"TESTING": True})
    body = sign_in(app, role=users.ADMIN).get("/staff/health").get_data(as_text=True)
    assert 'id="check-source"' in body and "Đồng bộ với hệ thống của tỉnh" in body and "opencps: đồng bộ kịp" in body
    assert emu.password not in body
    public = app.test_client().get("/healthz").get_json()
    assert public["checks"]["source"]["state"] == "ok" and public["checks"]["source"]["kind"] == "opencps"


def test_check_says_what_is_wrong_in_one_sentence(make_config, emu):
    emu.add(code(1), "processing")
    good = make_config(source=source_section(emu))
    ok, sentence = check_source(good, make_source(good))
    assert ok and sentence.endswith(f"sample dossier {code(1)} read and valid.")
    wrong = make_config(source=source_section(emu, password="nope"))
    ok, sentence = check_source(wrong, make_source(wrong))
    assert not ok and "refuses the credentials" in sentence and "nope" not in sentence
    closed = make_config(source={**source_section(emu), "base_url": "http://127.0.0.1:9/o/rest/v2"})
    ok, sentence = check_source(closed, make_source(closed))
    assert not ok and "cannot be reached" in sentence
    assert sentence.count(". ") == 0  # one sentence


def test_source_check_and_sync_once_commands(tmp_path, emu):
    emu.add(code(1), "releasing")
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[paths]\ndata_dir = "{tmp_path / "data"}"\n[source]\nkind = "opencps"\nbase_url = "{emu.url}/o/rest/v2"\n'
        f'[source.opencps]\ngroup_id = "{emu.group_id}"\nusername = "{emu.username}"\npassword = "{emu.password}"\n',
        encoding="utf-8")
    cfg.chmod(0o644)
    res = subprocess.run([str(KIOSK), "--config", str(cfg), "source", "check"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0 and "read and valid" in res.stdout, res.stderr
    assert res.stderr.startswith(f"Warning: {cfg} is mode 0644, so every user of this machine can read")
    assert "source.opencps.password" in res.stderr and emu.password not in res.stderr
    cfg.chmod(0o640)
    res = subprocess.run([str(KIOSK), "--config", str(cfg), "source", "check", "--json"], capture_output=True,
                         text=True, timeout=60)
    out = json.loads(res.stdout)
    assert out["ok"] and out["warning"] is None and not res.stderr
    res = subprocess.run([str(KIOSK), "--config", str(cfg), "sync", "--once"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0 and "1 written" in res.stdout, res.stderr
    assert emu.password not in res.stdout + res.stderr
    res = subprocess.run([str(KIOSK), "--config", str(cfg), "source", "status"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0 and res.stdout.startswith("ok: opencps: in step")


def test_a_source_status_change_within_one_kiosk_status_is_read_once(setup, emu):
    cfg, engine, source = setup()
    emu.add(code(1), "new")
    service = SyncService(cfg, engine, source)
    service.run_pass()
    emu.set_status(code(1), "receiving")  # both are "waiting" on the kiosk
    service.run_pass()
    service.run_pass()
    assert emu.count("/dossiers/") == 2
    assert statuses(engine) == {code(1): "waiting"}


# --- dossiers that leave the open list without a finishDate ----------------------------------------

def history(engine, n):
    with engine.connect() as conn:
        return conn.execute(sa.select(dossier_history.c.to_status).join(dossiers)
                            .where(dossiers.c.code == code(n)).order_by(dossier_history.c.id)).scalars().all()


def test_a_dossier_cancelled_without_a_finish_date_is_read_again_and_only_the_ready_one_sends_an_sms(setup, emu):
    cfg, engine, source = setup()
    emu.add(code(1), "processing", contactTelNo="0912345678")
    emu.add(code(2), "processing", contactTelNo="0912345679")
    service = SyncService(cfg, engine, source)
    service.run_pass()
    emu.set_status(code(1), "cancelled")  # as DossierActionsImpl.updateStatus does: no finishDate
    emu.set_status(code(2), "releasing")
    assert next(d for d in emu.dossiers.values() if d.dossierNo == code(1)).finishDate is None
    report = service.run_pass()
    assert report.refreshed == 1 and report.written == 2
    assert statuses(engine) == {code(1): "cancelled", code(2): "result_ready"}
    assert history(engine, 1) == ["processing", "cancelled"]
    reads = emu.count("/dossiers/")
    later = service.run_pass()
    assert later.refreshed == 0 and emu.count("/dossiers/") == reads  # final now: never asked again
    with engine.connect() as conn:
        sent = conn.execute(sa.select(notices.c.kind, notices.c.dossier_code)).all()
    assert [tuple(r) for r in sent] == [("result_ready", code(2))]
    gw = Gateway(cfg, engine)
    gw.run(until_idle=True)
    assert gw.stats["sent"] == 1


def test_dossiers_the_lists_did_not_show_are_read_a_bounded_batch_per_pass_until_every_one_is_reached(setup, emu):
    cfg, engine, source = setup()
    cfg.source_.refresh_batch = 2
    for n in range(1, 6):
        emu.add(code(n), "processing")
    service = SyncService(cfg, engine, source)
    service.run_pass()
    for n in range(1, 6):
        emu.set_status(code(n), "denied")
    seen = []
    for _ in range(3):
        report = service.run_pass()
        seen.append(sorted(c for c, s in statuses(engine).items() if s == "denied"))
        assert report.refreshed <= 2
    assert seen == [[code(1), code(2)], [code(n) for n in range(1, 5)], [code(n) for n in range(1, 6)]]
    assert emu.count("/dossiers/") == 5 + 5  # each read in detail once when new, once when it left the lists


def test_an_open_dossier_no_pass_has_seen_lately_is_asked_again_at_the_kiosk(setup, emu):
    import time_machine

    from kiosk.sources.api import lookup

    cfg, engine, source = setup()
    cfg.source_.refresh_batch = 0  # the sync never reads it: only the kiosk's own rule can catch it
    emu.add(code(1), "processing")
    emu.add(code(2), "processing")
    service = SyncService(cfg, engine, source)
    with time_machine.travel(datetime.now(timezone.utc), tick=True) as clock:
        service.run_pass()
        emu.set_status(code(1), "cancelled")
        clock.shift(timedelta(minutes=10))  # past lookup_max_age_s
        service.run_pass()  # lists code(2) again; code(1) is in no list
        assert statuses(engine)[code(1)] == "processing"
        assert load_state(engine, "opencps").confirmed_at > datetime.now(timezone.utc) - timedelta(minutes=1)
        reads = emu.count("/dossiers/")
        assert lookup(cfg, engine, source, code(2), None).row["status"] == "processing"
        assert emu.count("/dossiers/") == reads  # listed by the last pass: confirmed, not asked
        assert lookup(cfg, engine, source, code(1), None).row["status"] == "cancelled"
        assert emu.count("/dossiers/") == reads + 1
