"""The gateway against Gammu's dummy driver and against an emulated AT modem behind `proxyat`:
exact text and encoding on the wire, CMS errors, a hang, no network, a SIM PIN, unplug/replug."""
from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime, timezone
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from motcua.db import make_engine
from sms_gateway import outbox
from sms_gateway.gateway import EXIT_IDLE, EXIT_MODEM_UNUSABLE, Gateway, in_quiet_hours, retry_delay
from sms_gateway.health import read_modem_health
from sms_gateway.schema import notices
from sms_gateway.text import fold
from tests.modem.harness import FAST_SMS, SMSC, EmulatedModem

PROCEDURE = "Cấp bản sao trích lục hộ tịch"


@pytest.fixture
def modem(tmp_path: Path) -> EmulatedModem:
    return EmulatedModem(tmp_path / "emulated-modem")


@pytest.fixture
def setup(make_config, modem):
    """(config, engine) for a gateway on the emulated modem; keyword overrides per section."""
    engines = []

    def _setup(sms=None, modem_extra=None):
        cfg = make_config(sms={**FAST_SMS, **(sms or {})}, modem=modem.modem_section(**(modem_extra or {})))
        eng = make_engine(cfg)
        engines.append(eng)
        return cfg, eng

    yield _setup
    for eng in engines:
        eng.dispose()


def _enqueue(engine, n=1, phone="0912345678", kind="result_ready", prefix="n", **params):
    ids = []
    with engine.begin() as conn:
        for i in range(n):
            ids.append(outbox.enqueue(conn, key=f"{prefix}{i}", phone=phone, kind=kind, dossier_code=f"H{i}",
                                      params={"code": f"H42.{i:04d}", "procedure": PROCEDURE, **params}))
    return ids


def _rows(engine):
    with engine.connect() as conn:
        return {r.id: r for r in conn.execute(sa.select(notices).order_by(notices.c.id))}


def _run(cfg, engine, **kw):
    gw = Gateway(cfg, engine)
    return gw.run(until_idle=True, **kw), gw


# --- Gammu's dummy driver -------------------------------------------------------------------

def test_dummy_driver_happy_path(make_config, tmp_path):
    device = tmp_path / "dummy-modem"
    for sub in ("inbox", "outbox", "sent", "error"):
        (device / sub).mkdir(parents=True)
    cfg = make_config(sms=FAST_SMS, modem={"model": "dummy", "connection": "none", "device": str(device)})
    engine = make_engine(cfg)
    ids = _enqueue(engine, 3)
    code, gw = _run(cfg, engine)
    rows = _rows(engine)
    assert code == EXIT_IDLE and gw.stats["sent"] == 3
    for notice_id in ids:
        row = rows[notice_id]
        assert row.state == "sent" and row.attempts == 1 and row.parts == 1 and row.encoding == "gsm7"
        assert row.message_ref == 255 and row.sent_at is not None and row.phone_e164 == "+84912345678"
        assert row.text.startswith("UBND xa Yen Hoa: Ho so H42.") and row.text.isascii()
    with engine.connect() as conn:
        health = read_modem_health(conn)
    assert health["state"] == "ok" and health["network"] == "GammuT3l" and health["signal_percent"] == 42
    engine.dispose()


# --- exact text on the wire ------------------------------------------------------------------

def test_full_vietnamese_goes_out_as_ucs2_exactly(setup, modem):
    cfg, engine = setup(sms={"encoding": "ucs2", "max_parts": 3})
    [notice_id] = _enqueue(engine, 1, phone="01689123456")  # old 11-digit Viettel number
    assert _run(cfg, engine)[0] == EXIT_IDLE
    row = _rows(engine)[notice_id]
    [(number, encoding, text)] = modem.messages()
    assert number == "+84389123456" and encoding == "ucs2"
    assert text == row.text and f"Hồ sơ H42.0000 ({PROCEDURE}) đã có kết quả" in text
    parts = modem.sent()
    assert len(parts) == row.parts == 3 and all(p.smsc == SMSC and p.status_report_requested for p in parts)
    assert [p.concat[1:] for p in parts] == [(3, 1), (3, 2), (3, 3)]
    assert row.delivery_status == "delivered" and row.message_refs.count(",") == 2


def test_ascii_fold_goes_out_as_clean_gsm7_in_one_part(setup, modem):
    cfg, engine = setup(sms={"encoding": "ascii", "hours": "giờ hành chính"})
    [notice_id] = _enqueue(engine, 1, procedure="Đăng ký kết hôn có yếu tố nước ngoài, ỳ ỹ")
    _run(cfg, engine)
    row = _rows(engine)[notice_id]
    [sub] = modem.sent()
    assert sub.encoding == "gsm7" and sub.concat is None and row.parts == 1
    assert sub.text == row.text == fold(row.text)
    assert "(Dang ky ket hon co yeu to nuoc ngoai, y y) da co ket qua" in sub.text and sub.text.isascii()
    assert sub.text.endswith("gio hanh chinh.")


# --- operator errors ---------------------------------------------------------------------------

@pytest.mark.clock
def test_temporary_cms_error_backs_off_and_never_blocks_the_others(setup, modem):
    cfg, engine = setup(sms={"retry_base_s": 60, "retry_max_s": 600})
    modem.scenario(cms_errors=[42])  # network congestion, once
    first, second = _enqueue(engine, 2)
    _run(cfg, engine)
    rows = _rows(engine)
    assert rows[first].state == "retry" and rows[first].cms_code == 42 and "congestion" in rows[first].last_error
    wait = (rows[first].next_attempt_at - datetime.now(timezone.utc)).total_seconds()
    assert 40 < wait < 75  # first backoff: 60 s +- 20 %
    assert rows[second].state == "sent"
    with engine.begin() as conn:  # a minute later
        conn.execute(notices.update().where(notices.c.id == first).values(next_attempt_at=datetime.now(timezone.utc)))
    _run(cfg, engine)
    rows = _rows(engine)
    assert rows[first].state == "sent" and rows[first].attempts == 2 and rows[first].last_error is None
    assert len(modem.sent()) == 2


def test_permanent_cms_error_fails_at_once_with_the_code(setup, modem):
    cfg, engine = setup()
    modem.scenario(cms_errors=[1])  # unassigned number
    first, second = _enqueue(engine, 2)
    _run(cfg, engine)
    rows = _rows(engine)
    assert rows[first].state == "failed" and rows[first].cms_code == 1 and rows[first].attempts == 1
    assert "CMS 1 (unassigned number)" in rows[first].last_error
    assert rows[second].state == "sent" and len(modem.sent()) == 1


def test_repeated_temporary_errors_give_up_after_max_attempts(setup, modem):
    cfg, engine = setup(sms={"max_attempts": 2, "retry_base_s": 0.05, "retry_max_s": 0.05})
    modem.scenario(cms_errors=[38, 38, 38])
    [notice_id] = _enqueue(engine, 1)
    _run(cfg, engine)
    time.sleep(0.1)
    _run(cfg, engine)
    row = _rows(engine)[notice_id]
    assert row.state == "failed" and row.attempts == 2 and "gave up after 2 attempts" in row.last_error


# --- modem faults ------------------------------------------------------------------------------

def test_hang_makes_the_notice_uncertain_never_resent_and_the_modem_recovers(setup, modem):
    cfg, engine = setup(modem_extra={"send_timeout_s": 1.5})
    modem.scenario(hang_sends=1)
    first, second = _enqueue(engine, 2)
    started = time.monotonic()
    _run(cfg, engine)
    elapsed = time.monotonic() - started
    rows = _rows(engine)
    assert rows[first].state == "uncertain" and "may have gone out" in rows[first].last_error
    assert rows[second].state == "sent"  # a fresh connection after the hang
    assert elapsed < 20
    _run(cfg, engine)  # uncertain is never picked up again by the gateway
    assert _rows(engine)[first].state == "uncertain" and len(modem.sent()) == 1


def test_no_network_holds_notices_without_spending_attempts(setup, modem):
    cfg, engine = setup()
    modem.scenario(network="searching")
    [notice_id] = _enqueue(engine, 1)
    assert _run(cfg, engine)[0] == EXIT_MODEM_UNUSABLE
    row = _rows(engine)[notice_id]
    assert row.state == "queued" and row.attempts == 0
    with engine.connect() as conn:
        assert read_modem_health(conn)["state"] == "no_network"
    modem.scenario(network="home")
    assert _run(cfg, engine)[0] == EXIT_IDLE
    assert _rows(engine)[notice_id].state == "sent"


def test_sim_pin_is_reported_then_entered_from_config(setup, modem):
    modem.scenario(pin="1234")
    cfg, engine = setup()
    [notice_id] = _enqueue(engine, 1)
    assert _run(cfg, engine)[0] == EXIT_MODEM_UNUSABLE
    # one start of the modem: a SIM that wants its PIN says so again at once, a one-shot run stops
    assert len((modem.dir / "starts.log").read_text().splitlines()) == 1
    with engine.connect() as conn:
        health = read_modem_health(conn)
    assert health["state"] == "pin_required" and "[modem] pin" in health["detail"]
    assert _rows(engine)[notice_id].state == "queued"
    cfg_wrong, _ = setup(modem_extra={"pin": "0000"})
    assert _run(cfg_wrong, engine)[0] == EXIT_MODEM_UNUSABLE
    with engine.connect() as conn:
        assert "refused the configured PIN" in read_modem_health(conn)["detail"]
    cfg_pin, _ = setup(modem_extra={"pin": "1234"})
    assert _run(cfg_pin, engine)[0] == EXIT_IDLE
    assert _rows(engine)[notice_id].state == "sent"


def test_unplug_then_replug_loses_nothing_and_sends_nothing_twice(setup, modem):
    cfg, engine = setup()
    modem.scenario(unplug_after_sends=1)
    first, second, third = _enqueue(engine, 3)
    assert _run(cfg, engine)[0] == EXIT_MODEM_UNUSABLE
    rows = _rows(engine)
    assert rows[first].state == "sent"
    # the next command after an unplug fails to write: not sent, so a plain retry
    assert rows[second].state == "retry" and "modem gone" in rows[second].last_error
    assert rows[third].state == "queued"
    with engine.connect() as conn:
        assert read_modem_health(conn)["state"] == "unplugged"
    modem.scenario(unplugged=False)  # replug
    time.sleep(0.3)
    assert _run(cfg, engine)[0] == EXIT_IDLE
    assert {r.state for r in _rows(engine).values()} == {"sent"}
    texts = [m[2] for m in modem.messages()]
    assert len(texts) == 3 and len(set(texts)) == 3


def test_unplug_during_a_send_is_uncertain(setup, modem):
    cfg, engine = setup(modem_extra={"send_timeout_s": 1.5})
    modem.scenario(exit_on_send=1, accept_before_exit=True)
    [notice_id] = _enqueue(engine, 1)
    _run(cfg, engine)
    row = _rows(engine)[notice_id]
    assert row.state == "uncertain" and len(modem.sent()) == 1  # it did go out: uncertain was right


def test_balance_is_read_by_ussd_and_low_credit_flagged(setup, modem):
    cfg, engine = setup(sms={"balance_ussd": "*101#", "balance_low_below": 10000})
    modem.scenario(ussd="TKC: 5.000d, han su dung 31/12/2026")
    _run(cfg, engine)
    with engine.connect() as conn:
        health = read_modem_health(conn)
    assert health["balance_amount"] == 5000 and health["balance_low"] is True
    assert health["balance_text"].startswith("TKC: 5.000d") and health["balance_checked_at"] is not None


def test_failed_delivery_report_is_recorded(setup, modem):
    cfg, engine = setup()
    modem.scenario(status_reports="failed")
    [notice_id] = _enqueue(engine, 1)
    _run(cfg, engine)
    row = _rows(engine)[notice_id]
    assert row.state == "sent" and row.delivery_status == "failed" and row.delivered_at is None


# --- timing policy -----------------------------------------------------------------------------

@pytest.mark.clock
def test_quiet_hours_hold_notices_until_morning(setup, modem):
    assert in_quiet_hours(datetime(2025, 1, 1, 22, 0), dtime(21), dtime(7))
    assert in_quiet_hours(datetime(2025, 1, 1, 6, 59), dtime(21), dtime(7))
    assert not in_quiet_hours(datetime(2025, 1, 1, 7, 0), dtime(21), dtime(7))
    assert not in_quiet_hours(datetime(2025, 1, 1, 3, 0), dtime(0), dtime(0))
    local_now = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh"))
    start, end = dtime((local_now.hour + 23) % 24), dtime((local_now.hour + 2) % 24)
    cfg, engine = setup(sms={"quiet_start": start.isoformat(), "quiet_end": end.isoformat()})
    [notice_id] = _enqueue(engine, 1)
    assert _run(cfg, engine)[0] == EXIT_IDLE
    assert _rows(engine)[notice_id].state == "queued" and modem.sent() == []


def test_backoff_doubles_up_to_the_cap():
    delays = [retry_delay(n, 60, 3600) for n in (1, 2, 3, 10)]
    assert 48 <= delays[0] <= 72 and 96 <= delays[1] <= 144 and 192 <= delays[2] <= 288
    assert 2880 <= delays[3] <= 4320


# --- the command line --------------------------------------------------------------------------

def test_cli_send_run_status(tmp_path, modem):
    from tests.conftest import write_config_file

    cfg_path = write_config_file(tmp_path / "gw.toml", {
        "paths": {"data_dir": str(tmp_path / "data")}, "sms": {**FAST_SMS, "encoding": "ucs2"},
        "modem": modem.modem_section(),
    })
    cli = [sys.executable, "-m", "sms_gateway.cli", "--config", str(cfg_path)]
    out = subprocess.run([*cli, "send", "--to", "0912 345 678", "--text", "Xin chào, hồ sơ đã xong."],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "1 part(s), ucs2" in out.stdout
    bad = subprocess.run([*cli, "send", "--to", "12345", "--text", "x"], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "invalid number" in bad.stderr and "Traceback" not in bad.stderr
    run = subprocess.run([*cli, "run", "--until-idle"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    status = subprocess.run([*cli, "status"], capture_output=True, text=True, timeout=60)
    assert "modem main/modem: ok" in status.stdout and "sent 1" in status.stdout
    assert modem.messages() == [("+84912345678", "ucs2", "Xin chào, hồ sơ đã xong.")]


# --- one fsync per message, results never left behind a wait ----------------------------------

def _dummy_device(tmp_path: Path) -> Path:
    device = tmp_path / "dummy-modem"
    for sub in ("inbox", "outbox", "sent", "error"):
        (device / sub).mkdir(parents=True, exist_ok=True)
    return device


def test_back_to_back_sends_commit_one_transaction_per_message(make_config, tmp_path):
    """The outcome of message N is committed together with the claim of N+1 (one fsync, not two)."""
    cfg = make_config(sms=FAST_SMS, modem={"model": "dummy", "connection": "none",
                                           "device": str(_dummy_device(tmp_path))})
    engine = make_engine(cfg)
    n = 30
    _enqueue(engine, n)
    commits = []
    sa.event.listen(engine, "commit", lambda _conn: commits.append(1))
    code, gw = _run(cfg, engine)
    assert code == EXIT_IDLE and gw.stats["sent"] == n
    assert {r.state for r in _rows(engine).values()} == {"sent"}
    # n claims (the last outcome rides on the final flush) + start-up recovery + a few heartbeats;
    # claim and outcome in separate transactions would be 2n = 60
    assert n + 1 <= len(commits) <= n + 6, len(commits)
    engine.dispose()


def test_outcome_is_committed_before_the_pacing_wait(make_config, tmp_path):
    """While the gateway waits between two messages, the first one is already recorded `sent`: a crash
    during the pause must not turn a message known to be sent into an uncertain one."""
    import threading

    cfg = make_config(sms={**FAST_SMS, "pace_s": 1.5},
                      modem={"model": "dummy", "connection": "none", "device": str(_dummy_device(tmp_path))})
    engine = make_engine(cfg)
    first, second = _enqueue(engine, 2)
    gw = Gateway(cfg, engine)
    thread = threading.Thread(target=gw.run, kwargs={"until_idle": True})
    thread.start()
    try:
        deadline = time.monotonic() + 20
        seen = None
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                states = dict(conn.execute(sa.select(notices.c.id, notices.c.state)).all())
            if states[first] != "queued" and states[first] != "sending":
                seen = states
                break
            time.sleep(0.02)
        assert seen == {first: "sent", second: "queued"}, seen
    finally:
        gw.stop()
        thread.join(30)
    engine.dispose()


def test_watchdog_thread_ends_with_the_connection(setup, modem):
    import threading

    cfg, engine = setup()
    _enqueue(engine, 2)
    assert _run(cfg, engine)[0] == EXIT_IDLE and len(modem.sent()) == 2
    deadline = time.monotonic() + 5
    while any(t.name == "sms-send-watchdog" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name == "sms-send-watchdog" for t in threading.enumerate())


def _zombie_children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] == "Z":
            out.append(int(entry.name))
    return out


def _wait_until(condition, what, timeout_s: float = 300.0) -> None:
    """Wait for a condition, however slow the machine; the timeout only turns a hang into a failure.
    `what()` says what was awaited and what was seen."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {timeout_s:.0f} s for {what()}")
        time.sleep(0.1)


def test_reconnecting_to_an_unplugged_modem_leaves_no_zombie_processes(tmp_path, modem):
    """Each reconnect behind proxyat starts a modem process; the running gateway collects them."""
    import signal

    from tests.conftest import write_config_file

    modem.scenario(unplugged=True)
    cfg_path = write_config_file(tmp_path / "gw.toml", {
        "paths": {"data_dir": str(tmp_path / "data")}, "sms": FAST_SMS,
        "modem": modem.modem_section(reconnect_s=0.1),
    })
    proc = subprocess.Popen([sys.executable, "-m", "sms_gateway.cli", "--config", str(cfg_path), "run"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    starts = modem.dir / "starts.log"

    def attempts() -> int:
        assert proc.poll() is None, proc.stderr.read()
        return len(starts.read_text().splitlines()) if starts.exists() else 0

    try:
        # Wait for the loop to have reconnected 4 times (after 0.1, 0.2, 0.4 s... on a fast machine; each
        # attempt starts a Python modem process, slow under emulation). The limit only stops a hang.
        _wait_until(lambda: attempts() >= 4, lambda: f"4 modem starts by the reconnect loop ({attempts()} so far)")
        # A child that just exited is a zombie until the gateway collects it; a leaked one stays forever.
        _wait_until(lambda: _zombie_children(proc.pid) == [],
                    lambda: f"the gateway to collect its exited children {_zombie_children(proc.pid)}")
        assert attempts() >= 4
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def test_reaper_collects_exited_children_only_while_no_modem_connection_is_open(tmp_path, make_config):
    """Some Gammu versions SIGHUP the proxy process on close and never wait for it. The CLI's gateway
    (which owns no other children) collects them, but never while a connection is open: Gammu may
    still signal its current proxy's pid, which must not be freed for reuse. Run in a child Python so
    that os.waitpid(-1) cannot touch this test process's own children."""
    script = f"""
import os, sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from pathlib import Path
from motcua.config import load_config
from sms_gateway.gateway import Gateway
cfg_path = Path({str(tmp_path / 'c.toml')!r}); cfg_path.write_text("")
cfg = load_config(cfg_path, {{"paths": {{"data_dir": {str(tmp_path / 'data')!r}}}}})

def exited_child():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    time.sleep(0.2)
    return pid

def is_zombie(pid):
    try:
        return Path(f"/proc/{{pid}}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return False

gw = Gateway(cfg, engine=None, reap_children=True)
pid = exited_child()
gw.modem.sm = object()  # a connection is open
gw._reap()
assert is_zombie(pid), "reaped while connected"
gw.modem.sm = None
gw._reap()
assert not is_zombie(pid), "not reaped"
gw._reap()  # no children left: nothing to do, no error
plain = Gateway(cfg, engine=None)
pid = exited_child()
plain._reap()
assert is_zombie(pid), "a gateway inside another program reaped"
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


class _HandClock:
    def __init__(self) -> None:
        self.t = 5000.0

    def __call__(self) -> float:
        return self.t


def test_gateway_timers_run_on_the_injected_clock_as_before(setup):
    """Connect, health, balance, heartbeat, modem read and the memory sweep are due at the start (the
    balance and the sweep wait for the first send); the sweep then every REPORT_SWEEP_S; the heartbeat
    row is written at most every HEARTBEAT_S unless forced."""
    from sms_gateway.gateway import HEARTBEAT_S, REPORT_SWEEP_S

    cfg, engine = setup()
    clock = _HandClock()
    gw = Gateway(cfg, engine, clock=clock)
    assert [n for n in ("connect", "health", "balance", "heartbeat", "read", "sweep")
            if not gw.schedule.due(n)] == []
    gw.schedule.done("sweep")
    assert not gw.schedule.due("sweep")
    clock.t += REPORT_SWEEP_S
    assert gw.schedule.due("sweep")

    def written_detail():
        with engine.connect() as conn:
            return read_modem_health(conn)["detail"]

    gw.detail = "first"
    gw._heartbeat()
    gw.detail = "second"
    gw._heartbeat()  # too soon: not written
    assert written_detail() == "first"
    clock.t += HEARTBEAT_S
    gw._heartbeat()
    assert written_detail() == "second"
    gw.detail = "forced"
    gw._heartbeat(force=True)
    assert written_detail() == "forced"
