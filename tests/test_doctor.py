"""`kiosk doctor` against simulated devices: each failure is found and said plainly.

Devices: a video file and a missing device node for the camera; python-escpos over TCP to the
printing area's network printer emulator (paper ok/low/out, offline) and a dead port; Gammu's dummy
driver and the SMS area's AT-modem emulator (through Gammu's proxyat connection) for the modem;
a read-only mount and a damaged file for the database; stand-in `systemctl`/`timedatectl` programs
printing what the real ones print.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kiosk import doctor
from kiosk.doctor import ERROR, OK, SKIPPED, WARNING, Context, run_checks
from motcua.config import load_config
from motcua.db import make_engine
from motcua.timeutil import utcnow

REPO = Path(__file__).resolve().parents[1]
KIOSK = Path(sys.executable).with_name("kiosk")


def check(tmp_path: Path, overrides: dict[str, Any], name: str, **ctx_args: Any) -> doctor.Finding:
    ctx = Context(str(tmp_path / "config.toml"), overrides, **ctx_args)
    found = {f.name: f for f in run_checks(ctx, only={name} if name != "config" else None)}
    return found[name]


# --- config -------------------------------------------------------------------------------------

def test_bad_config_key_is_named_and_the_rest_is_skipped(tmp_path: Path, base: dict) -> None:
    (tmp_path / "config.toml").write_text('[scanner]\ncamera = "0"\nfpss = 15\n', encoding="utf-8")
    findings = {f.name: f for f in run_checks(Context(str(tmp_path / "config.toml"), {}))}
    assert findings["config"].state == ERROR
    assert "scanner.fpss" in findings["config"].summary and "unknown setting" in findings["config"].summary
    assert findings["database"].state == SKIPPED and findings["printer"].state == SKIPPED


def test_bad_config_value_and_broken_toml(tmp_path: Path, base: dict) -> None:
    (tmp_path / "config.toml").write_text('[printer]\nkind = "parallel"\n', encoding="utf-8")
    assert "printer.kind" in check(tmp_path, {}, "config").summary
    (tmp_path / "config.toml").write_text('[printer\nkind = "usb"\n', encoding="utf-8")
    assert "not valid TOML" in check(tmp_path, {}, "config").summary


def test_config_file_with_credentials_readable_by_others_is_a_one_sentence_warning(tmp_path: Path, base: dict) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[source.opencps]\npassword = "mat-khau-tinh"\n[modem]\npin = ""\n', encoding="utf-8")
    path.chmod(0o644)
    f = check(tmp_path, base, "config")
    assert f.state == WARNING and "mode 0644" in f.summary and "every user of this machine can read" in f.summary
    assert "source.opencps.password" in f.summary and "modem.pin" not in f.summary  # an empty PIN is no secret
    assert "mat-khau-tinh" not in f.summary and f"chmod 0640 {path}" in f.summary and f.summary.count(". ") == 0
    path.chmod(0o660)
    assert "wider than 0640" in check(tmp_path, base, "config").summary
    path.chmod(0o640)
    assert check(tmp_path, base, "config").state == OK
    path.write_text("[source]\npoll_s = 30.0\n", encoding="utf-8")  # nothing secret in it
    path.chmod(0o644)
    assert check(tmp_path, base, "config").state == OK


# --- database -----------------------------------------------------------------------------------

def test_healthy_database_is_writable_and_intact(tmp_path: Path, base: dict) -> None:
    f = check(tmp_path, base, "database")
    assert f.state == OK and "writable, integrity ok" in f.summary and f.data["integrity"] is True


def _read_only(folder: Path) -> list[str]:
    """Command prefix that runs something with `folder` read-only, even for root (which ignores modes)."""
    if os.geteuid() == 0:
        return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                f'mount --bind "{folder}" "{folder}" && mount -o remount,bind,ro "{folder}" && exec "$@"', "sh"]
    folder.chmod(0o555)
    return []


def test_unwritable_database_is_reported(tmp_path: Path, base: dict) -> None:
    make_engine(load_config(str(tmp_path / "config.toml"), base)).dispose()  # a real, migrated database
    (tmp_path / "config.toml").write_text(f'[paths]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    prefix = _read_only(tmp_path / "data")
    res = subprocess.run([*prefix, str(KIOSK), "--config", str(tmp_path / "config.toml"), "doctor", "--json",
                          "--only", "database"], capture_output=True, text=True, timeout=120)
    (tmp_path / "data").chmod(0o755)
    out = json.loads(res.stdout)
    db = next(c for c in out["checks"] if c["name"] == "database")
    assert res.returncode == 1 and out["status"] == ERROR
    assert db["state"] == ERROR and ("Read-only file system" in db["summary"] or "not writable" in db["summary"])
    assert "read-only" in db["hint"]


def test_damaged_database_fails_integrity_check(tmp_path: Path, base: dict) -> None:
    cfg = load_config(str(tmp_path / "config.toml"), base)
    engine = make_engine(cfg)
    engine.dispose()
    db = tmp_path / "data" / "motcua.db"
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=DELETE")
    con.execute("CREATE TABLE filler (x TEXT)")
    con.executemany("INSERT INTO filler VALUES (?)", [("x" * 500,) for _ in range(400)])
    con.execute("CREATE INDEX filler_x ON filler (x)")
    con.commit()
    con.close()
    raw = bytearray(db.read_bytes())
    page = 4096
    for n in range(len(raw) // page - 6, len(raw) // page - 1):  # scribble over index pages near the end
        raw[n * page + 100:n * page + 600] = os.urandom(500)
    db.write_bytes(bytes(raw))
    f = check(tmp_path, base, "database")
    assert f.state == ERROR
    assert "integrity_check" in f.summary or "malformed" in f.summary, f.summary
    assert "backup" in f.hint or "locked" in f.hint


# --- camera -------------------------------------------------------------------------------------

def test_missing_camera_device(tmp_path: Path, base: dict) -> None:
    f = check(tmp_path, {**base, "scanner": {"camera": "/dev/v4l/by-id/usb-no-such-camera-video-index0"}}, "camera")
    assert f.state == ERROR and "does not exist" in f.summary and "replug" in f.hint


def test_camera_frames_arrive_from_a_video_standing_in(tmp_path: Path, base: dict) -> None:
    from tests.scanner_media import desk, write_video

    video = write_video(tmp_path / "cam.avi", [(desk((320, 240)), 10)])
    f = check(tmp_path, {**base, "scanner": {"camera": str(video)}}, "camera", camera_seconds=5)
    assert f.state == OK and f.data["frames"] == 5 and (f.data["width"], f.data["height"]) == (320, 240)


def test_camera_that_opens_but_sends_nothing(tmp_path: Path, base: dict) -> None:
    bad = tmp_path / "cam.avi"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00AVI LIST" + b"\x00" * 64)
    f = check(tmp_path, {**base, "scanner": {"camera": str(bad)}}, "camera", camera_seconds=1)
    assert f.state == ERROR and ("cannot open" in f.summary or "no frame" in f.summary)


def test_running_scanner_is_asked_instead_of_the_camera(tmp_path: Path, base: dict) -> None:
    """The scanner owns the camera: doctor reads its heartbeat and never opens the device."""
    from kiosk.scanner.status import write_status

    cfg = load_config(str(tmp_path / "config.toml"), {**base, "scanner": {"camera": "/dev/nonexistent"}})
    write_status(cfg, "unavailable", "camera /dev/nonexistent: not found, retrying")
    f = check(tmp_path, {**base, "scanner": {"camera": "/dev/nonexistent"}}, "camera")
    # a fresh heartbeat saying "unavailable" means the scanner runs and cannot see its camera
    assert f.state == ERROR and "not found, retrying (reported by the scanner service)" in f.summary
    write_status(cfg, "ok", "camera 640x480 at 15 fps")
    f = check(tmp_path, {**base, "scanner": {"camera": "/dev/nonexistent"}}, "camera")
    assert f.state == OK and "reported by the scanner service" in f.summary


# --- printer ------------------------------------------------------------------------------------

@pytest.mark.parametrize("paper, online, state, words", [
    ("ok", True, OK, "online, paper ok"),
    ("low", True, WARNING, "paper LOW"),
    ("out", True, ERROR, "OUT OF PAPER"),
    ("ok", False, ERROR, "OFFLINE"),
])
def test_printer_paper_and_online_state(tmp_path: Path, base: dict, paper: str, online: bool, state: str,
                                        words: str) -> None:
    from kiosk.printing.emulator import NetworkPrinterEmulator

    with NetworkPrinterEmulator() as printer:
        printer.paper, printer.online = paper, online
        f = check(tmp_path, {**base, "printer": {"kind": "network", "target": printer.address, "timeout_s": 2}},
                  "printer")
        assert printer.status_queries >= 1  # it really asked
    assert f.state == state and words in f.summary, f.summary


def test_printer_not_reachable(tmp_path: Path, base: dict) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    f = check(tmp_path, {**base, "printer": {"kind": "network", "target": f"127.0.0.1:{port}", "timeout_s": 1}},
              "printer")
    assert f.state == ERROR and "OFFLINE" in f.summary and "cable" in f.hint


def test_running_print_worker_is_asked_instead_of_the_printer(tmp_path: Path, base: dict) -> None:
    from kiosk.printing.jobs import record_state
    from kiosk.printing.worker import printer_lock

    cfg = load_config(str(tmp_path / "config.toml"), base)
    engine = make_engine(cfg)
    with engine.begin() as conn:
        record_state(conn, "paper_out", "paper end sensor: no paper")
    engine.dispose()
    with printer_lock(cfg):  # the worker holds the printer
        f = check(tmp_path, base, "printer")
    assert f.state == ERROR and "reported by the print worker" in f.summary and "no paper" in f.summary


def test_unplugged_usb_printer_device_node(tmp_path: Path, base: dict) -> None:
    f = check(tmp_path, {**base, "printer": {"kind": "file", "target": "/dev/motcua-printer-not-here"}}, "printer")
    assert f.state == ERROR and "not connected" in f.summary
    assert not Path("/dev/motcua-printer-not-here").exists()  # and nothing was created there


def test_printer_writing_to_a_plain_file_is_a_warning(tmp_path: Path, base: dict) -> None:
    f = check(tmp_path, {**base, "printer": {"kind": "file", "target": str(tmp_path / "out.bin")}}, "printer")
    assert f.state == WARNING and "not to a printer" in f.summary


# --- modem --------------------------------------------------------------------------------------

def test_modem_gammu_dummy_driver(tmp_path: Path, base: dict) -> None:
    (tmp_path / "gammu-dummy").mkdir()
    modem = {"model": "dummy", "connection": "none", "device": str(tmp_path / "gammu-dummy")}
    f = check(tmp_path, {**base, "modem": modem}, "modem")
    # the dummy phone's SIM has an SMSC; not pinned in the config, so only a warning
    assert f.state == WARNING and "SIM ready, registered" in f.summary and "[modem] smsc" in f.hint
    f = check(tmp_path, {**base, "modem": {**modem, "smsc": "+84980200030"}}, "modem")
    # everything answers, but a dummy driver is not a modem: still a warning, saying so
    assert f.state == WARNING and "dummy driver" in f.summary and f.data["signal_percent"] == 42
    assert f.data["smsc"] == "+84980200030"


def test_modem_not_configured(tmp_path: Path, base: dict) -> None:
    f = check(tmp_path, {**base, "modem": {"device": ""}}, "modem")
    assert f.state == ERROR and "device is empty" in f.summary and "/dev/motcua-modem" in f.hint


@pytest.fixture
def emulated_modem(tmp_path: Path):
    from tests.modem.harness import EmulatedModem

    return EmulatedModem(tmp_path / "modem")


@pytest.mark.parametrize("scenario, status, words", [
    ({}, "ok", "registered"),
    ({"sim": False}, "no_sim", "no SIM"),
    ({"network": "searching"}, "no_network", "not registered"),
    ({"pin": "1234"}, "pin_required", "PIN"),
    ({"unplugged": True}, "unplugged", "not answering"),
])
def test_modem_faults_from_the_at_emulator(tmp_path: Path, base: dict, emulated_modem: Any, scenario: dict,
                                           status: str, words: str) -> None:
    emulated_modem.scenario(**scenario)
    f = check(tmp_path, {**base, "modem": emulated_modem.modem_section()}, "modem")
    assert f.data["status"] == status and words in f.summary, f.summary
    assert f.state == (OK if status == "ok" else ERROR)


def test_running_gateway_is_asked_instead_of_the_modem(tmp_path: Path, base: dict) -> None:
    from sms_gateway.health import write_modem_health

    cfg = load_config(str(tmp_path / "config.toml"), base)
    engine = make_engine(cfg)
    with engine.begin() as conn:
        write_modem_health(conn, state="no_network", registered=False, sim="ready", signal_percent=0,
                           detail="not registered on a network (NoNetwork)", last_seen_at=utcnow())
    engine.dispose()
    # the configured device does not exist: opening it would fail differently
    f = check(tmp_path, {**base, "modem": {"model": "at", "connection": "at", "device": "/dev/nonexistent"}}, "modem")
    assert f.state == ERROR and "reported by the SMS gateway" in f.summary and "not registered" in f.summary


# --- clock, units, disk -------------------------------------------------------------------------

def _fake_tool(bin_dir: Path, name: str, stdout: str, rc: int = 0) -> None:
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text(f"#!/bin/sh\ncat <<'EOF'\n{stdout}\nEOF\nexit {rc}\n")
    tool.chmod(0o755)


def test_units_not_running_are_listed(tmp_path: Path, base: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    states = ["active", "active", "failed", "activating", "active", "active", "active", "failed"]
    _fake_tool(tmp_path / "bin", "systemctl", "\n".join(states), rc=3)  # what `systemctl is-active` prints
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    f = check(tmp_path, base, "units")
    assert f.state == ERROR
    assert "motcua-printer.service failed" in f.summary and "motcua-sms.service activating" in f.summary
    assert "motcua-backup.service failed" in f.summary and "journalctl" in f.hint


def test_units_all_active(tmp_path: Path, base: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_tool(tmp_path / "bin", "systemctl", "\n".join(["active"] * 7 + ["inactive"]))
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    assert check(tmp_path, base, "units").state == OK


def test_units_skipped_without_systemd(tmp_path: Path, base: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_tool(tmp_path / "bin", "systemctl",
               "System has not been booted with systemd as init system (PID 1). Can't operate.", rc=1)
    (tmp_path / "bin" / "systemctl").write_text(
        "#!/bin/sh\necho 'System has not been booted with systemd as init system (PID 1). Can'\"'\"'t operate.' >&2\n"
        "exit 1\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    assert check(tmp_path, base, "units").state == SKIPPED


@pytest.mark.parametrize("answer, state", [("yes\nyes", OK), ("no\nyes", WARNING), ("no\nno", WARNING)])
def test_clock_sync(tmp_path: Path, base: dict, monkeypatch: pytest.MonkeyPatch, answer: str, state: str) -> None:
    _fake_tool(tmp_path / "bin", "timedatectl", answer)  # `timedatectl show -p NTPSynchronized -p NTP --value`
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    f = check(tmp_path, base, "clock")
    assert f.state == state and f.data["synchronised"] is (state == OK)


def test_clock_never_set_is_an_error(tmp_path: Path, base: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "EARLIEST_SANE", doctor.datetime(2999, 1, 1, tzinfo=doctor.timezone.utc))
    f = check(tmp_path, base, "clock")
    assert f.state == ERROR and "never set" in f.summary


def test_disk_space_thresholds_come_from_the_staff_health_settings(tmp_path: Path, base: dict) -> None:
    free_mb = shutil.disk_usage(tmp_path).free // 2**20
    assert check(tmp_path, {**base, "staff": {"disk_warn_mb": 0, "disk_error_mb": 0}}, "disk").state == OK
    f = check(tmp_path, {**base, "staff": {"disk_warn_mb": free_mb + 10**6, "disk_error_mb": free_mb + 10**6}}, "disk")
    assert f.state == ERROR and "MB free" in f.summary


# --- the command --------------------------------------------------------------------------------

def _write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[paths]\ndata_dir = "{tmp_path / "data"}"\n' + text, encoding="utf-8")
    return path


def test_json_output_and_exit_codes(tmp_path: Path, base: dict) -> None:
    from kiosk.printing.emulator import NetworkPrinterEmulator
    from tests.modem.harness import EmulatedModem
    from tests.scanner_media import desk, write_video

    video = write_video(tmp_path / "cam.avi", [(desk((320, 240)), 10)])
    modem = EmulatedModem(tmp_path / "modem").modem_section()
    with NetworkPrinterEmulator() as printer:
        cfg = _write_config(tmp_path, f'[scanner]\ncamera = "{video}"\n'
                            f'[printer]\nkind = "network"\ntarget = "{printer.address}"\n'
                            f'[modem]\nmodel = "at"\nconnection = "proxyat"\ndevice = "{modem["device"]}"\n'
                            'smsc = "+84980200030"\n')
        args = [str(KIOSK), "--config", str(cfg), "doctor", "--json", "--skip", "backup,clock,units"]
        res = subprocess.run(args, capture_output=True, text=True, timeout=120)
        out = json.loads(res.stdout)
        assert [c["name"] for c in out["checks"]] == ["config", "database", "station", "disk", "source", "camera",
                                                    "printer", "modem"]
        assert out["status"] == OK and res.returncode == 0, res.stdout
        assert all(set(c) == {"name", "state", "summary", "hint", "data"} for c in out["checks"])

        printer.paper = "out"
        res = subprocess.run(args, capture_output=True, text=True, timeout=120)
    out = json.loads(res.stdout)
    assert res.returncode == 1 and out["status"] == ERROR
    assert [c["name"] for c in out["checks"] if c["state"] == ERROR] == ["printer"]


def test_screen_output_fits_and_explains(tmp_path: Path, base: dict) -> None:
    cfg = _write_config(tmp_path, '[scanner]\ncamera = "/dev/v4l/by-id/gone"\n[printer]\nkind = "network"\n'
                        'target = "127.0.0.1:1"\ntimeout_s = 1\n')
    res = subprocess.run([str(KIOSK), "--config", str(cfg), "doctor", "--skip", "modem"], capture_output=True,
                         text=True, timeout=120)
    lines = res.stdout.splitlines()
    assert res.returncode == 1
    assert len(lines) <= 24  # one screen
    assert any(line.startswith(" FAIL  camera") for line in lines)
    assert any(line.startswith(" FAIL  printer") for line in lines)
    assert any("->" in line and "replug" in line for line in lines)
    assert "failure(s)" in lines[-1]


def test_unknown_check_name_is_refused(tmp_path: Path, base: dict) -> None:
    cfg = _write_config(tmp_path, "")
    res = subprocess.run([str(KIOSK), "--config", str(cfg), "doctor", "--only", "camra"], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 2 and "camra" in res.stderr and "Traceback" not in res.stderr


def test_stale_scanner_heartbeat_means_doctor_opens_the_camera_itself(tmp_path: Path, base: dict) -> None:
    from tests.scanner_media import desk, write_video

    video = write_video(tmp_path / "cam.avi", [(desk((320, 240)), 10)])
    overrides = {**base, "scanner": {"camera": str(video)}}
    cfg = load_config(str(tmp_path / "config.toml"), overrides)
    status = tmp_path / "data" / "scanner.status.json"
    status.write_text(json.dumps({"state": "ok", "detail": "camera ok", "updated_at": time.time() - 120}))
    f = check(tmp_path, overrides, "camera")
    assert f.state == OK and "frames of 320x240" in f.summary and "scanner" not in f.summary
    assert cfg.paths.data_dir / "scanner.status.json" == status


@pytest.mark.skipif(os.geteuid() != 0, reason="only root switches user")
def test_root_acts_as_the_owner_of_the_data(tmp_path: Path, base: dict) -> None:
    """`sudo kiosk doctor` must not leave root-owned SQLite or lock files behind for the services."""
    cfg = load_config(str(tmp_path / "config.toml"), base)
    assert doctor.data_owner(cfg) is None  # root's own folder: nothing to switch to
    os.chown(cfg.paths.data_dir, 65534, 65534)
    assert doctor.data_owner(cfg) == "nobody"
