"""One owner per device: the lock helper refuses a second owner and names the holder; doctor does not open
a device whose lock is held, and says who holds it; `kiosk doctor` checks this box's station id."""
from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Iterator

import pytest

from kiosk import doctor
from kiosk.doctor import ERROR, OK, WARNING, Context
from motcua.config import load_config
from motcua.db import make_engine
from motcua.devicelock import DeviceBusy, DeviceLock, device_key, holder, lock_dir
from motcua.stations import Service, heartbeat
from motcua.timeutil import utcnow
from tests.test_doctor import check  # the doctor tests' helper; `base` is the conftest's

HOLD = textwrap.dedent("""
    import sys
    from motcua.devicelock import DeviceLock
    lock = DeviceLock(sys.argv[1], sys.argv[2], sys.argv[3])
    lock.acquire()
    print("held", flush=True)
    sys.stdin.read()  # until the test closes our stdin
""")


@contextlib.contextmanager
def _held(folder: Path, device: str, service: str) -> Iterator[subprocess.Popen]:
    """Another process holds the device's lock until the block ends."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), device, service], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def test_a_second_owner_is_refused_and_told_who_holds_the_device(tmp_path):
    with _held(tmp_path, "printer", "print-worker") as proc:
        with pytest.raises(DeviceBusy) as busy:
            DeviceLock(tmp_path, "printer", "kiosk-print").acquire()
        assert busy.value.holder is not None and busy.value.holder.pid == proc.pid
        assert str(busy.value) == f"printer is in use by print-worker pid {proc.pid}"
        assert holder(tmp_path, "printer").pid == proc.pid
        assert holder(tmp_path, "camera") is None  # another device is free
    assert holder(tmp_path, "printer") is None  # the kernel dropped it with the process
    with DeviceLock(tmp_path, "printer", "kiosk-print"):
        assert holder(tmp_path, "printer") is not None


def test_one_modem_has_one_lock_by_whichever_path_names_it(tmp_path):
    node = tmp_path / "ttyUSB2"
    node.write_text("")
    alias = tmp_path / "usb-SimTech_SIM7600-if02-port0"
    alias.symlink_to(node)
    assert device_key("modem", str(alias)) == device_key("modem", str(node))
    assert device_key("modem", str(node)) != device_key("modem", str(tmp_path / "ttyUSB3"))


def test_doctor_does_not_open_a_modem_a_gateway_holds_and_names_the_holder(tmp_path, base):
    from sms_gateway.api import modem_lock

    (tmp_path / "gammu-dummy").mkdir()
    modem = {"model": "dummy", "connection": "none", "device": str(tmp_path / "gammu-dummy")}
    cfg = load_config(str(tmp_path / "config.toml"), {**base, "modem": modem})
    lock = modem_lock(cfg.modem, cfg.paths.data_dir)
    with _held(lock.folder, lock.device, "sms-gateway") as proc:
        f = check(tmp_path, {**base, "modem": modem}, "modem")
    assert f.state == WARNING and f"in use by sms-gateway pid {proc.pid}" in f.summary
    assert "signal_percent" not in f.data  # not opened: nothing was read from it
    f = check(tmp_path, {**base, "modem": modem}, "modem")  # free again: the doctor opens it itself
    assert "SIM ready, registered" in f.summary


def test_doctor_reports_the_print_worker_holding_the_printer(tmp_path, base):
    with _held(lock_dir(Path(base["paths"]["data_dir"])), "printer", "print-worker") as proc:
        f = check(tmp_path, base, "printer")
    assert f"in use by print-worker pid {proc.pid}" in f.summary
    assert f.data["in_use_by"] == f"print-worker pid {proc.pid}"


def test_doctor_reports_the_scanner_holding_the_camera_without_opening_it(tmp_path, base):
    video = tmp_path / "no-such-camera"  # opening it would be an error finding
    overrides = {**base, "scanner": {"camera": str(video)}}
    with _held(lock_dir(Path(base["paths"]["data_dir"])), "camera", "scanner") as proc:
        f = check(tmp_path, overrides, "camera")
    assert f"in use by scanner pid {proc.pid}" in f.summary and "does not exist" not in f.summary


@pytest.mark.postgres
def test_doctor_station_check_heartbeat_fresh_stale_and_an_id_used_on_two_hosts(tmp_path, base, pg_database,
                                                                                monkeypatch):
    overrides = {**base, "station": {"id": "kiosk-a", "stale_after_s": 60}}
    cfg = load_config(str(tmp_path / "config.toml"), overrides)
    engine = make_engine(cfg)
    ctx = Context(str(tmp_path / "config.toml"), overrides, cfg=cfg, engine=engine)
    assert "no service of this box" in doctor.check_station(ctx).summary
    heartbeat(engine, cfg.station, Service.WEB, now=utcnow() - timedelta(seconds=5))
    f = doctor.check_station(ctx)
    assert f.state == OK and "web 5 s ago" in f.summary
    f = doctor.check_station(ctx, now=utcnow() + timedelta(seconds=120))
    assert f.state == WARNING and "stale" in f.summary
    engine.dispose()
    # On a shared database: the default id is a warning, and a second host using this id an error.
    shared = {**overrides, "database": {"url": pg_database}}
    main = {**shared, "station": {"id": "main"}}
    f = check(tmp_path, main, "station")
    assert f.state == WARNING and "default station 'main'" in f.summary and "--station-id" in f.hint
    cfg = load_config(str(tmp_path / "config.toml"), shared)
    engine = make_engine(cfg)
    heartbeat(engine, cfg.station, Service.WEB)
    engine.dispose()
    with monkeypatch.context() as m:
        m.setattr("motcua.stations.socket.gethostname", lambda: "other-pi")  # the same id from a second box
        engine = make_engine(cfg)
        heartbeat(engine, cfg.station, Service.PRINT_WORKER)
        engine.dispose()
    f = check(tmp_path, shared, "station")
    assert f.state == ERROR and "also in use on other-pi" in f.summary
