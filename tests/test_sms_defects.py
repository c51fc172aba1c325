"""Regression tests for the defects issue 15 measured on the AT-modem emulator: a number that does not
exist retried for hours, a refused PIN tried again at every start, a stale network shown during an
outage, a 40 s stall after an unplug with a command in flight, the balance USSD before the first send."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from motcua.db import make_engine
from motcua.timeutil import utcnow
from sms_gateway import outbox
from sms_gateway.cli import cli
from sms_gateway.gateway import EXIT_IDLE, EXIT_MODEM_UNUSABLE, Gateway
from sms_gateway.health import read_modem_health
from sms_gateway.outbox import NoticeState
from sms_gateway.schema import notices
from tests.modem.harness import FAST_SMS, EmulatedModem


@pytest.fixture
def modem(tmp_path: Path) -> EmulatedModem:
    return EmulatedModem(tmp_path / "emulated-modem")


@pytest.fixture
def setup(make_config, modem):
    engines = []

    def _setup(sms=None, modem_extra=None):
        cfg = make_config(sms={**FAST_SMS, **(sms or {})}, modem=modem.modem_section(**(modem_extra or {})))
        engines.append(make_engine(cfg))
        return cfg, engines[-1]

    yield _setup
    for eng in engines:
        eng.dispose()


def _enqueue(engine, n=1, prefix="d"):
    with engine.begin() as conn:
        return [outbox.enqueue(conn, key=f"{prefix}{i}", phone="0912345678", kind="text",
                               params={"text": f"Thong bao {prefix}{i}"}) for i in range(n)]


def _row(engine, notice_id):
    with engine.connect() as conn:
        return conn.execute(notices.select().where(notices.c.id == notice_id)).one()


def _health(engine):
    with engine.connect() as conn:
        return read_modem_health(conn)


def _run_until(cfg, engine, done, tries=4) -> None:
    """Run the gateway until `done()`: on a loaded machine a start can fail at Gammu's Init (the
    daemon would simply start again)."""
    for _ in range(tries):
        Gateway(cfg, engine).run(until_idle=True)
        if done():
            return


def _emulator_state(modem: EmulatedModem) -> dict:
    return json.loads((modem.dir / "state.json").read_text())


def test_unidentified_subscriber_fails_at_once_and_the_next_notice_goes(setup, modem):
    cfg, engine = setup()
    modem.scenario(cms_errors=[28])
    first, second = _enqueue(engine, 2)
    assert Gateway(cfg, engine).run(until_idle=True) == EXIT_IDLE
    row = _row(engine, first)
    assert row.state == NoticeState.FAILED and row.attempts == 1 and row.cms_code == 28
    assert "unidentified subscriber" in row.last_error
    assert _row(engine, second).state == NoticeState.SENT


def test_unknown_modem_error_500_fails_on_the_second_try_not_the_eighth(setup, modem):
    cfg, engine = setup(sms={"retry_base_s": 600, "retry_max_s": 600})
    modem.scenario(cms_errors=[500, 500, 500])
    [notice_id] = _enqueue(engine)
    _run_until(cfg, engine, lambda: _row(engine, notice_id).attempts == 1)
    assert _row(engine, notice_id).state == NoticeState.RETRY  # one unknown error may be a glitch
    with engine.begin() as conn:  # its backoff has passed (the test does not wait ten minutes)
        conn.execute(notices.update().where(notices.c.id == notice_id).values(next_attempt_at=utcnow()))
    Gateway(cfg, engine).run(until_idle=True)
    row = _row(engine, notice_id)
    assert row.state == NoticeState.FAILED and row.attempts == 2 and "gave up after 2 attempts" in row.last_error
    assert modem.sent() == []


def test_refused_pin_is_never_entered_again_across_restarts_until_the_config_changes(setup, modem):
    modem.scenario(pin="1234")
    cfg_wrong, engine = setup(modem_extra={"pin": "0000"})
    [notice_id] = _enqueue(engine)
    refused = (Path(cfg_wrong.paths.data_dir) / "sms-gateway" / "pin-refused.json").exists
    _run_until(cfg_wrong, engine, refused)
    for _ in range(3):  # three more starts: watchdog restarts, a reboot
        assert Gateway(cfg_wrong, engine).run(until_idle=True) == EXIT_MODEM_UNUSABLE
    assert _emulator_state(modem)["wrong_pins"] == 1  # a real SIM locks to PUK at 3
    health = _health(engine)
    assert health["state"] == "pin_required" and "refused the configured PIN" in health["detail"]
    cfg_other, _ = setup(modem_extra={"pin": "1111"})  # a changed PIN is tried, once
    _run_until(cfg_other, engine, lambda: _emulator_state(modem)["wrong_pins"] == 2)
    Gateway(cfg_other, engine).run(until_idle=True)
    assert _emulator_state(modem)["wrong_pins"] == 2
    cfg_right, _ = setup(modem_extra={"pin": "1234"})
    _run_until(cfg_right, engine, lambda: _row(engine, notice_id).state == NoticeState.SENT)
    assert _row(engine, notice_id).state == NoticeState.SENT
    assert not (Path(cfg_right.paths.data_dir) / "sms-gateway" / "pin-refused.json").exists()


def test_status_during_a_network_outage_shows_no_network_or_signal_from_before(setup, modem, tmp_path):
    from tests.conftest import write_config_file

    cfg, engine = setup()
    Gateway(cfg, engine).run(until_idle=True)
    before = _health(engine)
    assert before["state"] == "ok" and before["network"] and before["signal_percent"] is not None
    modem.scenario(network="searching")
    _enqueue(engine)
    assert Gateway(cfg, engine).run(until_idle=True) == EXIT_MODEM_UNUSABLE
    during = _health(engine)
    assert during["state"] == "no_network" and during["network"] is None and during["signal_percent"] is None
    cfg_path = write_config_file(tmp_path / "status.toml", {"paths": {"data_dir": str(cfg.paths.data_dir)}})
    result = CliRunner().invoke(cli, ["--config", str(cfg_path), "status"])
    assert result.exit_code == 0, result.output
    assert "no_network" in result.output and before["network"] not in result.output
    assert "network ?" in result.output and "signal ?" in result.output


@pytest.mark.parametrize("command", ["AT+COPS?", "AT+CSQ"])
def test_unplug_with_a_command_in_flight_is_noticed_at_the_command_timeout(setup, modem, command):
    cfg, engine = setup(modem_extra={"command_timeout_s": 1.5})
    modem.scenario(exit_on_command={command: 1})
    [notice_id] = _enqueue(engine)
    started = time.monotonic()
    assert Gateway(cfg, engine).run(until_idle=True) == EXIT_MODEM_UNUSABLE
    elapsed = time.monotonic() - started
    health = _health(engine)
    assert health["state"] == "unplugged" and "did not answer within 1.5 s" in health["detail"]
    assert elapsed < 20  # was 31-41 s: Gammu's own timeouts on a port that went away
    assert _row(engine, notice_id).state == NoticeState.QUEUED  # nothing was spent on it
    modem.scenario(unplugged=False)
    _run_until(cfg, engine, lambda: _row(engine, notice_id).state == NoticeState.SENT)
    assert _row(engine, notice_id).state == NoticeState.SENT


def test_balance_ussd_waits_until_after_the_first_send(setup, modem):
    cfg, engine = setup(sms={"balance_ussd": "*101#"})
    modem.scenario(ussd="TKC: 25.000d")
    _enqueue(engine)
    Gateway(cfg, engine).run(until_idle=True)
    commands = [line.split(" ", 1)[1] for line in (modem.dir / "commands.log").read_text().splitlines()
                if line[:1].isdigit()]
    first_send = next(i for i, c in enumerate(commands) if c.startswith("AT+CMGS"))
    balance = next(i for i, c in enumerate(commands) if c.startswith("AT+CUSD"))
    assert first_send < balance
    assert _health(engine)["balance_amount"] == 25000
