"""`kiosk doctor`: one screen that tells the commune's IT person what works and what to do next.

It checks, in order: the config file, the database (writable, integrity), backups, disk space, the
clock, the systemd units, the camera, the printer and the modem. Devices are asked for real: the
camera must deliver frames, the printer must answer its status request, the modem must answer,
have its SIM ready, be registered and know its SMS centre. A device already owned by its running
service (scanner, print worker, SMS gateway) is not opened a second time: its owner's last report
(kiosk/health.py, the same functions the staff health page uses) is shown instead.

Exit status 1 when any check is an error, 0 otherwise; `--json` prints the same for monitoring.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click

if TYPE_CHECKING:  # the config (pydantic) and the gateway's api (SQLAlchemy) load when the doctor runs
    from motcua.config import Config

OK, WARNING, ERROR, SKIPPED = "ok", "warning", "error", "skipped"
UNITS = ("motcua-web.service", "motcua-scanner.service", "motcua-printer.service", "motcua-sms.service",
         "motcua-sync.service", "motcua-browser.service", "motcua-backup.timer", "motcua-backup.service")
CHECK_NAMES = ("config", "database", "station", "backup", "disk", "clock", "units", "source", "camera", "printer",
               "modem")
LABELS_VI = {"config": "cấu hình", "database": "cơ sở dữ liệu", "station": "trạm", "backup": "sao lưu", "disk": "ổ đĩa",
             "clock": "đồng hồ", "units": "dịch vụ",
             "source": "hệ thống của tỉnh", "camera": "camera", "printer": "máy in", "modem": "modem SMS"}
BACKUP_MAX_AGE_H = 36  # two backups a day: older than this means the timer is not running
EARLIEST_SANE = datetime(2025, 1, 1, tzinfo=timezone.utc)  # a Pi has no battery clock


@dataclass
class Finding:
    name: str
    state: str
    summary: str
    hint: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """What the checks share: the config and engine when they could be had, and unit states."""
    config_path: str | None
    overrides: dict[str, Any]
    cfg: Config | None = None
    engine: Any = None
    units: dict[str, str] = field(default_factory=dict)
    camera_seconds: float = 5.0
    engine_tried: bool = False

    def get_engine(self) -> Any:
        """The engine, made on first need (the database check makes it when it runs); None if it fails."""
        if self.engine is None and not self.engine_tried and self.cfg is not None:
            self.engine_tried = True
            try:
                from motcua.db import make_engine

                self.engine = make_engine(self.cfg)
            except Exception:  # the database check reports why
                self.engine = None
        return self.engine


# --- config, database, backup, disk -----------------------------------------------------------

def check_config(ctx: Context) -> Finding:
    from motcua.config import ConfigError, exposed_credentials, load_config, resolve_path

    path, _ = resolve_path(ctx.config_path)
    try:
        ctx.cfg = load_config(ctx.config_path, ctx.overrides)
    except ConfigError as exc:
        return Finding("config", ERROR, str(exc),
                       "Sửa tệp cấu hình theo config.sample.toml / fix the key named above (see config.sample.toml)",
                       {"path": str(path)})
    where = str(ctx.cfg.source) if ctx.cfg.source else f"no file at {path}: built-in defaults"
    data = {"path": str(ctx.cfg.source) if ctx.cfg.source else None}
    exposed = exposed_credentials(ctx.cfg.source)
    if exposed:
        return Finding("config", WARNING, f"loads, but {exposed}", data=data)
    return Finding("config", OK, f"loads ({where})", data=data)


def check_database(ctx: Context) -> Finding:
    from sqlalchemy.engine import make_url

    cfg = ctx.cfg
    url = make_url(cfg.database.url)
    if url.get_backend_name() == "sqlite" and url.database:
        db = Path(url.database)
        problem = _sqlite_unwritable(db)
        if problem:
            return Finding("database", ERROR, problem,
                           "Kiểm tra quyền / check owner and mount: `ls -l` the folder; it must belong to "
                           "motcua and not be mounted read-only (`findmnt -T " + str(db.parent) + "`)",
                           {"backend": "sqlite", "path": str(db)})
    try:
        from motcua.db import make_engine

        ctx.engine_tried = True
        ctx.engine = make_engine(cfg)
    except Exception as exc:  # the finding is the error itself
        return Finding("database", ERROR, f"cannot open {url.render_as_string(hide_password=True)}: {exc}",
                       "Check [database] url, and that the database server (if any) is reachable",
                       {"backend": url.get_backend_name()})
    if url.get_backend_name() != "sqlite":
        return _check_server_database(ctx, url)
    db = Path(url.database)
    start = time.monotonic()
    try:
        con = sqlite3.connect(f"file:{db}?mode=rw", uri=True, timeout=cfg.database.busy_timeout_ms / 1000)
        try:
            con.execute("BEGIN IMMEDIATE")  # takes the write lock: proves writes can happen now
            con.execute("CREATE TABLE doctor_write_probe (x INTEGER)")
            con.rollback()
            rows = [r[0] for r in con.execute("PRAGMA integrity_check").fetchall()]
        finally:
            con.close()
    except sqlite3.Error as exc:
        return Finding("database", ERROR, f"{db}: {exc}",
                       "If 'readonly': check owner/permissions and read-only mounts; if 'locked': a process "
                       "holds a write transaction (restart motcua.target)", {"backend": "sqlite", "path": str(db)})
    size_mb = round(db.stat().st_size / 2**20, 1)
    data = {"backend": "sqlite", "path": str(db), "size_mb": size_mb,
            "integrity_check_s": round(time.monotonic() - start, 2)}
    if rows != ["ok"]:
        return Finding("database", ERROR, f"{db}: PRAGMA integrity_check: {'; '.join(map(str, rows[:3]))}",
                       "Dừng dịch vụ, khôi phục bản sao lưu / stop motcua.target and restore the newest "
                       "backup from backups/ (see docs/deploy.md)", {**data, "integrity": False})
    return Finding("database", OK, f"{db}: writable, integrity ok ({size_mb} MB)", data={**data, "integrity": True})


def _sqlite_unwritable(db: Path) -> str | None:
    """Why SQLite could not write here, found before opening it (which could create files)."""
    folder = db.parent
    if not folder.is_dir():
        return f"folder {folder} does not exist"
    for target in (folder, db) if db.exists() else (folder,):
        if not os.access(target, os.W_OK):
            return f"{target} is not writable by {_whoami()}"
    try:  # root passes os.access, but not a read-only mount
        fd, probe = tempfile.mkstemp(prefix=".doctor-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"cannot create files in {folder}: {exc.strerror}"
    return None


def _whoami() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def _check_server_database(ctx: Context, url: Any) -> Finding:
    import sqlalchemy as sa

    try:
        with ctx.engine.connect() as conn:
            conn.execute(sa.text("CREATE TEMPORARY TABLE doctor_write_probe (x INTEGER)"))
            conn.rollback()
    except Exception as exc:
        return Finding("database", ERROR, f"{url.get_backend_name()}: {exc}", "Check the database server and grants")
    return Finding("database", OK, f"{url.render_as_string(hide_password=True)}: answers, migrations current",
                   data={"backend": url.get_backend_name()})


def check_station(ctx: Context, now: datetime | None = None) -> Finding:
    """This box's [station] id: set where the database is shared, used by no other host, heartbeat fresh."""
    import socket

    from motcua.db import is_sqlite
    from motcua.stations import get_station

    st = ctx.cfg.station
    hint = ("Đặt mã trạm / give this box its own id: sudo hardware/setup.sh --station-id kiosk-a "
            "--station-role kiosk (writes [station] in the config), then restart the services")
    engine = ctx.get_engine()
    if engine is None:
        return Finding("station", SKIPPED, "the database cannot be opened (see the database check)")
    data: dict[str, Any] = {"id": st.id, "role": str(st.role)}
    if not is_sqlite(engine) and st.id == "main":
        return Finding("station", WARNING, "the database is shared but this box is the default station 'main'",
                       hint, data)
    station = get_station(engine, st.id, stale_after_s=st.stale_after_s, now=now)
    services = station.services if station else []
    host = socket.gethostname()[:64]
    others = sorted({s.host for s in services if s.host != host and not s.stale})
    if others:
        return Finding("station", ERROR, f"station id {st.id!r} is also in use on {', '.join(others)}: two boxes "
                       "with one id print each other's tickets", hint, {**data, "other_hosts": others})
    mine = [s for s in services if s.host == host]
    if not mine:
        # A single box whose services have not run yet is as before (the units check says what is stopped);
        # in a hall, a box missing from the hall list is worth a look.
        return Finding("station", OK if is_sqlite(engine) else WARNING,
                       f"station {st.id!r} ({st.role}): no service of this box has written a heartbeat yet",
                       "" if is_sqlite(engine) else "Start the services (see the units check); each writes one at "
                       "start", data)
    beats = ", ".join(f"{s.service} {s.age_s:.0f} s ago" for s in mine)
    data["services"] = {s.service: round(s.age_s) for s in mine}
    if all(s.stale for s in mine):
        return Finding("station", WARNING, f"station {st.id!r} ({st.role}): heartbeats stale ({beats}; stale after "
                       f"{st.stale_after_s:g} s)", "`systemctl status 'motcua-*'`; the services may have stopped",
                       data)
    return Finding("station", OK, f"station {st.id!r} ({st.role}): {beats}", data=data)


def check_backup(ctx: Context) -> Finding:
    from kiosk.backup import list_backups, sqlite_file

    if sqlite_file(ctx.cfg) is None:
        return Finding("backup", SKIPPED, "not SQLite: back up the database server with pg_dump")
    backups = list_backups(ctx.cfg)
    if not backups:
        return Finding("backup", WARNING, "no backup yet",
                       "Chạy / run `kiosk backup` once; check `systemctl status motcua-backup.timer`", {"count": 0})
    newest = backups[-1]
    age_h = round((time.time() - newest.stat().st_mtime) / 3600, 1)
    data = {"count": len(backups), "newest": str(newest), "age_hours": age_h}
    if age_h > BACKUP_MAX_AGE_H:
        return Finding("backup", WARNING, f"newest backup is {age_h} h old ({newest.name})",
                       "Check `systemctl status motcua-backup.timer motcua-backup.service` and "
                       "`journalctl -u motcua-backup`", data)
    return Finding("backup", OK, f"{len(backups)} backup(s), newest {age_h} h old", data=data)


def check_disk(ctx: Context) -> Finding:
    from kiosk.health import check_disk as gather_disk

    return _from_health(gather_disk(ctx.cfg, ctx.engine), "Xóa bớt tệp / free space: old logs "
                        "(`journalctl --vacuum-size=50M`), old backups, or use a bigger card")


# --- clock and units --------------------------------------------------------------------------

def _run(argv: list[str], timeout: float = 10) -> subprocess.CompletedProcess | None:
    if not shutil.which(argv[0]):
        return None
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None


def check_clock(ctx: Context) -> Finding:
    now = datetime.now(timezone.utc)
    if now < EARLIEST_SANE:
        return Finding("clock", ERROR, f"the clock says {now:%Y-%m-%d}: it was never set",
                       "Đồng hồ sai / connect the network once (NTP) or set it: `sudo date -s 'YYYY-MM-DD HH:MM'`;"
                       " appointment dates and quiet hours depend on it", {"now": now.isoformat()})
    res = _run(["timedatectl", "show", "-p", "NTPSynchronized", "-p", "NTP", "--value"])
    if res is not None and res.returncode == 0 and res.stdout.split():
        synced, *rest = res.stdout.split()
        ntp_on = rest[0] if rest else "?"
        if synced == "yes":
            return Finding("clock", OK, "synchronised (timedatectl)", data={"synchronised": True})
        return Finding("clock", WARNING,
                       f"not synchronised (timedatectl: NTP service {'on' if ntp_on == 'yes' else 'off'})",
                       "Without network the clock drifts; enable `timedatectl set-ntp true` and let the Pi reach "
                       "an NTP server, or add an RTC battery (Pi 5)", {"synchronised": False})
    res = _run(["chronyc", "-n", "tracking"])
    if res is not None and res.returncode == 0:
        leap = next((line.split(":", 1)[1].strip() for line in res.stdout.splitlines()
                     if line.startswith("Leap status")), "")
        if leap == "Normal":
            return Finding("clock", OK, "synchronised (chrony)", data={"synchronised": True})
        return Finding("clock", WARNING, f"chrony: {leap or 'unknown'}", "Check `chronyc sources`",
                       {"synchronised": False})
    return Finding("clock", WARNING, f"cannot tell whether the clock is synchronised (now {now:%Y-%m-%d %H:%M} UTC)",
                   "No timedatectl/chrony answer: is this running under systemd?", {"synchronised": None})


def check_units(ctx: Context) -> Finding:
    res = _run(["systemctl", "is-active", *UNITS])
    if (res is None or not res.stdout.strip() or "booted with systemd" in res.stderr
            or "Failed to connect" in res.stderr):
        return Finding("units", SKIPPED, "systemd is not running here (not the appliance, or inside a chroot)")
    states = dict(zip(UNITS, res.stdout.split(), strict=False))
    ctx.units = states
    bad = []
    for unit, state in states.items():
        if unit == "motcua-backup.service":  # a oneshot: inactive between runs is normal
            if state == "failed":
                bad.append(f"{unit} failed")
        elif state != "active":
            bad.append(f"{unit} {state}")
    if bad:
        return Finding("units", ERROR, "; ".join(bad),
                       "Xem nhật ký / see why: `journalctl -u UNIT -n 50`; "
                       "start all: `sudo systemctl start motcua.target`",
                       {"states": states})
    return Finding("units", OK, f"{len(states)} units active", data={"states": states})


# --- devices ----------------------------------------------------------------------------------

def check_camera(ctx: Context) -> Finding:
    from kiosk.health import check_camera as scanner_report
    from kiosk.scanner.status import STALE_AFTER_S, camera_lock, read_status
    from motcua.devicelock import DeviceBusy

    hint = "The scanner cannot use the camera: replug it; `journalctl -u motcua-scanner -n 30`"
    updated = read_status(ctx.cfg).get("updated_at")
    heartbeat = updated is not None and (datetime.now(timezone.utc) - updated).total_seconds() <= STALE_AFTER_S
    if heartbeat or ctx.units.get("motcua-scanner.service") == "active":
        return _from_health(scanner_report(ctx.cfg, ctx.engine), hint, source="scanner service")
    lock = camera_lock(ctx.cfg)
    try:
        lock.acquire()
    except DeviceBusy as busy:  # a scanner that has not written its status yet, or another program of ours
        return _in_use("camera", busy, scanner_report(ctx.cfg, ctx.engine), hint)
    try:
        return _camera_frames(ctx.cfg, ctx.camera_seconds)
    finally:
        lock.release()


def _in_use(name: str, busy: Any, report: dict[str, Any] | None, hint: str) -> Finding:
    """A device another process owns: not opened; its owner's report when there is one."""
    who = f"in use by {busy.holder or 'another process'}"
    if report is None:
        return Finding(name, WARNING, f"{who}; its report could not be read", data={"in_use_by": str(busy.holder)})
    finding = _from_health(report, hint)
    finding.summary = f"{who}: {finding.summary}"
    finding.data["in_use_by"] = str(busy.holder)
    return finding


def _camera_frames(cfg: Config, seconds: float) -> Finding:
    from kiosk.scanner.capture import SourceSpec, open_capture

    target = cfg.scanner.camera
    hint = ("Cắm lại camera / replug the camera (a USB 2 port, powered hub); `ls -l /dev/motcua-camera "
            "/dev/video*`; set [scanner] camera")
    if target.isdigit():
        node = Path(f"/dev/video{target}")
        if not node.exists():
            return Finding("camera", ERROR, f"no camera: {node} does not exist", hint, {"camera": target})
        spec = SourceSpec("camera", target, cfg.scanner.width, cfg.scanner.height, cfg.scanner.fps)
    else:
        path = Path(target)
        if not path.exists():
            return Finding("camera", ERROR, f"no camera: {target} does not exist", hint, {"camera": target})
        # A video file stands in for the camera (as with `kiosk scan --video`).
        kind = "video" if path.is_file() else "camera"
        spec = SourceSpec(kind, target, cfg.scanner.width, cfg.scanner.height, cfg.scanner.fps)
    cap = open_capture(spec)
    if cap is None:
        return Finding("camera", ERROR, f"cannot open {spec.describe()}",
                       "Another process may hold it (`fuser -v /dev/video*`), or it is not a capture device",
                       {"camera": target})
    frames, shape, start = 0, None, time.monotonic()
    try:
        while frames < 5 and time.monotonic() - start < seconds:
            ok, frame = cap.read()
            if ok and frame is not None:
                frames += 1
                shape = frame.shape
            else:
                time.sleep(0.05)
    finally:
        cap.release()
    elapsed = time.monotonic() - start
    data = {"camera": target, "frames": frames, "seconds": round(elapsed, 2)}
    if not frames:
        return Finding("camera", ERROR, f"{spec.describe()} opened but sent no frame in {seconds:g} s",
                       "Replug it; try another USB port or a powered hub; a camera that gets too little power "
                       "opens but sends nothing", data)
    height, width = shape[:2]
    return Finding("camera", OK, f"{spec.describe()}: {frames} frames of {width}x{height} in {elapsed:.1f} s",
                   data={**data, "width": width, "height": height})


def check_printer(ctx: Context) -> Finding:
    from kiosk.printing import connections as pc
    from kiosk.printing.states import PrinterState
    from kiosk.printing.worker import printer_lock
    from motcua.devicelock import DeviceBusy

    lock = printer_lock(ctx.cfg)
    try:
        lock.acquire()
    except DeviceBusy as busy:
        if ctx.get_engine() is None:
            return _in_use("printer", busy, None, _PRINTER_HINT)
        from kiosk.health import check_printer as worker_report

        finding = _from_health(worker_report(ctx.cfg, ctx.engine), _PRINTER_HINT, source="print worker")
        finding.summary += f"; in use by {busy.holder or 'another process'}"
        finding.data["in_use_by"] = str(busy.holder)
        return finding
    except OSError as exc:
        return Finding("printer", ERROR, f"cannot take the printer lock: {exc}", "Check data_dir permissions")
    target = ctx.cfg.printer.target
    if ctx.cfg.printer.kind in ("file", "serial") and target.startswith("/dev/") and not os.path.exists(target):
        lock.release()
        return Finding("printer", ERROR, f"{target} does not exist: the printer is not connected (or off)",
                       _PRINTER_HINT, {"kind": ctx.cfg.printer.kind, "status": PrinterState.OFFLINE})
    conn = None
    try:
        conn = pc.make_connection(ctx.cfg)
        state, detail = conn.status()
        where = conn.describe()
    except pc.PrinterOffline as exc:
        state, detail, where = PrinterState.OFFLINE, str(exc), ctx.cfg.printer.kind
    except Exception as exc:  # a driver's own error: the finding
        state, detail, where = PrinterState.OFFLINE, f"{type(exc).__name__}: {exc}", ctx.cfg.printer.kind
    finally:
        if conn is not None:
            conn.close()
        lock.release()
    data = {"kind": ctx.cfg.printer.kind, "status": state}
    summary = f"{where}: " + {PrinterState.OK: "online, paper ok", PrinterState.PAPER_LOW: "online, paper LOW",
                              PrinterState.PAPER_OUT: "OUT OF PAPER", PrinterState.OFFLINE: "OFFLINE",
                              PrinterState.UNKNOWN: "answers no status request"}.get(state, state)
    if detail:
        summary += f" ({detail})"
    kind = ctx.cfg.printer.kind
    not_a_printer = kind == "dummy" or (kind == "file" and not Path(where.split(" ", 1)[-1]).is_char_device())
    if state == PrinterState.OK and not_a_printer:
        return Finding("printer", WARNING, f"{where}: tickets go to a file/memory, not to a printer",
                       "For the real printer set [printer] kind = \"usb\" (with its ids) or kind = \"file\", "
                       "target = \"/dev/motcua-printer\"", data)
    if state == PrinterState.OK:
        return Finding("printer", OK, summary, data=data)
    if state == PrinterState.PAPER_OUT:
        return Finding("printer", ERROR, summary, "Hết giấy / load an 80 mm thermal roll, close the cover", data)
    if state == PrinterState.OFFLINE:
        return Finding("printer", ERROR, summary, _PRINTER_HINT, data)
    if state == PrinterState.PAPER_LOW:
        return Finding("printer", WARNING, summary, "Sắp hết giấy / put a new roll ready", data)
    return Finding("printer", WARNING, summary,
                   "This connection cannot report paper: print a test ticket with `kiosk print ticket`", data)


_PRINTER_HINT = ("Bật máy in, kiểm tra cáp / power on, check the USB cable and cover; `ls -l /dev/motcua-printer "
                 "/dev/usb/lp*`, `lsusb`; check [printer] kind and target")


def check_modem(ctx: Context) -> Finding:
    cfg = ctx.cfg
    health = None
    if ctx.get_engine() is not None:
        from kiosk.health import check_modem as gateway_report

        health = gateway_report(cfg, ctx.engine)
    gateway_up = ctx.units.get("motcua-sms.service") == "active" or (
        health is not None and health["data"].get("gateway_running") is True and health["data"].get("status"))
    if gateway_up:
        finding = _from_health(health, _MODEM_HINT, source="SMS gateway") if health else Finding(
            "modem", WARNING, "the SMS gateway owns the modem but its report could not be read")
        if not cfg.modem.smsc and finding.state == OK:
            finding.state, finding.hint = WARNING, _SMSC_HINT
            finding.summary += "; [modem] smsc not set"
        return finding
    return _modem_probe(cfg)


_MODEM_HINT = ("Kiểm tra modem và SIM / check the stick is in AT (not HiLink) mode, `ls -l /dev/motcua-modem`, "
               "the SIM (PIN off, credit), the antenna; `journalctl -u motcua-sms`")
_SMSC_HINT = ("Set [modem] smsc to the operator's SMS centre number (read it once with `gammu getsmsc` while "
              "the SIM is fresh, or ask the operator): Gammu forgets the SIM's after an unplug")


def _modem_probe(cfg: Config) -> Finding:
    from sms_gateway import api as sms

    if not cfg.modem.device:
        return Finding("modem", ERROR, "[modem] device is empty: no modem configured",
                       'Set [modem] device = "/dev/motcua-modem", connection = "at", model = "" '
                       "(see config.sample.toml)", {"status": sms.ModemState.ERROR})
    finding = _modem_answers(cfg)
    if cfg.modem.model == "dummy" and finding.state == OK:
        finding.state = WARNING
        finding.summary += " (Gammu's dummy driver: messages become files, not SMS)"
        finding.hint = 'For the LTE modem set [modem] device = "/dev/motcua-modem", connection = "at", model = ""'
    return finding


def _modem_answers(cfg: Config) -> Finding:
    from sms_gateway import api as sms

    probe = sms.probe_modem(cfg.modem, cfg.paths.data_dir)
    if probe.in_use_by:  # a gateway started without its unit (or before its first heartbeat): not opened
        return Finding("modem", WARNING, f"{_modem_where(cfg)}: in use by {probe.in_use_by}; not opened",
                       "Its report is in `sms-gateway status` once it has run a moment",
                       {"in_use_by": probe.in_use_by})
    if probe.state != sms.ModemState.OK:
        return Finding("modem", ERROR, f"{_modem_where(cfg)}: {probe.state}: {probe.detail}", _MODEM_HINT,
                       {"status": probe.state})
    smsc = probe.smsc_on_sim
    data = {"status": probe.state, "sim": probe.sim, "registered": probe.registered, "network": probe.network,
            "signal_percent": probe.signal_percent, "model": probe.model, "smsc": cfg.modem.smsc or smsc or None,
            "seconds": probe.seconds}
    signal = probe.signal_percent
    summary = (f"{_modem_where(cfg)}: SIM ready, registered on {probe.network or '?'}, "
               f"signal {signal if signal is not None else '?'}%")
    if not cfg.modem.smsc and not smsc:
        return Finding("modem", ERROR, summary + "; no SMS centre number", _SMSC_HINT, data)
    summary += f", SMSC {cfg.modem.smsc or smsc}" + ("" if cfg.modem.smsc else " (from the SIM)")
    if not cfg.modem.smsc:
        return Finding("modem", WARNING, summary, _SMSC_HINT, data)
    if signal is not None and signal < 15:
        return Finding("modem", WARNING, summary + ": weak signal", "Move the modem or use a USB extension "
                       "cable to a window", data)
    return Finding("modem", OK, summary, data=data)


def _modem_where(cfg: Config) -> str:
    device = cfg.modem.device if cfg.modem.connection != "proxyat" else "emulator"
    return f"{cfg.modem.model or 'at'} {device}".strip()


def _from_health(report: dict[str, Any], hint: str, source: str = "") -> Finding:
    """A kiosk.health check result as a doctor finding (health's unknown becomes a warning here)."""
    state = {"ok": OK, "warning": WARNING, "error": ERROR}.get(report["state"], WARNING)
    summary = report.get("detail") or report["state"]
    if source:
        summary = f"{summary} (reported by the {source})"
    return Finding(report["name"], state, summary, "" if state == OK else hint, dict(report.get("data") or {}))


def check_source(ctx: Context) -> Finding:
    """The sync service's own record (last success, lag, last error); no call to the provincial system
    here: `kiosk source check` does that."""
    from kiosk.sources.api import sync_health

    if ctx.cfg.source_.kind == "none":
        return Finding("source", SKIPPED, "no provincial system configured ([source] kind)")
    engine = ctx.get_engine()
    if engine is None:
        return Finding("source", SKIPPED, "the database cannot be opened (see the database check)")
    report = {"name": "source", **sync_health(ctx.cfg, engine)}
    return _from_health(report, "Chạy / run `kiosk source check`; `journalctl -u motcua-sync -n 30`")


# --- running and showing ----------------------------------------------------------------------

CHECKS: dict[str, Callable[[Context], Finding]] = {
    "config": check_config, "database": check_database, "station": check_station, "backup": check_backup,
    "disk": check_disk,
    "clock": check_clock, "units": check_units, "source": check_source, "camera": check_camera,
    "printer": check_printer, "modem": check_modem,
}
NEEDS_CONFIG = set(CHECK_NAMES) - {"config", "clock", "units"}


def run_checks(ctx: Context, only: set[str] | None = None, skip: set[str] | None = None) -> list[Finding]:
    """Every check in order; one that crashes is reported as an error and the rest still run."""
    findings = []
    for name in CHECK_NAMES:
        if (only and name not in only and name != "config") or (skip and name in skip and name != "config"):
            continue
        if name in NEEDS_CONFIG and ctx.cfg is None:
            findings.append(Finding(name, SKIPPED, "needs a configuration that loads"))
            continue
        try:
            findings.append(CHECKS[name](ctx))
        except Exception as exc:  # a bug in one check must not hide the others
            findings.append(Finding(name, ERROR, f"the check itself failed: {type(exc).__name__}: {exc}",
                                    "Please report this with the output of `kiosk -v doctor`"))
    if ctx.engine is not None:
        ctx.engine.dispose()
    return findings


_MARK = {OK: "OK", WARNING: "WARN", ERROR: "FAIL", SKIPPED: "skip"}


def render(findings: list[Finding], color: bool = False) -> str:
    colours = {OK: "green", WARNING: "yellow", ERROR: "red", SKIPPED: None}
    lines = [f"kiosk doctor: tự kiểm tra thiết bị / appliance self-test  {datetime.now():%Y-%m-%d %H:%M}"]
    for f in findings:
        mark = f"{_MARK[f.state]:<4}"
        if color and colours[f.state]:
            mark = click.style(mark, fg=colours[f.state], bold=f.state == ERROR)
        label = f"{f.name} ({LABELS_VI[f.name]})"
        lines.append(f" {mark}  {label:<26} {f.summary}")
        if f.hint and f.state in (WARNING, ERROR):
            lines.append(f" {'':4}  {'':<26} -> {f.hint}")
    errors = sum(f.state == ERROR for f in findings)
    warnings = sum(f.state == WARNING for f in findings)
    if errors:
        lines.append(f"{errors} lỗi, {warnings} cảnh báo / {errors} failure(s), {warnings} warning(s)")
    else:
        lines.append(f"Không có lỗi / no failures ({warnings} warning(s))")
    return "\n".join(lines)


def report(findings: list[Finding]) -> dict[str, Any]:
    states = [f.state for f in findings]
    status = ERROR if ERROR in states else WARNING if WARNING in states else OK
    return {"status": status, "checked_at": datetime.now(timezone.utc).isoformat(),
            "checks": [asdict(f) for f in findings]}


def _names(value: str | None) -> set[str] | None:
    if not value:
        return None
    names = {v.strip() for v in value.split(",") if v.strip()}
    unknown = names - set(CHECK_NAMES)
    if unknown:
        raise click.BadParameter(f"unknown check(s) {', '.join(sorted(unknown))}; known: {', '.join(CHECK_NAMES)}")
    return names


def data_owner(cfg: Config) -> str | None:
    """The user owning data_dir when we are root and it is not: the doctor must act as that user,
    or the files it touches (SQLite's -wal/-shm, the printer lock) would become root's and the
    services could no longer open them."""
    import pwd

    if os.geteuid() != 0:
        return None
    try:
        uid = cfg.paths.data_dir.stat().st_uid
    except OSError:
        return None
    if uid == 0:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _switch_to_data_owner(config_path: str | None, overrides: dict[str, Any]) -> None:
    from motcua.config import ConfigError, load_config

    try:
        cfg = load_config(config_path, overrides)
    except ConfigError:
        return  # the config check will say why
    user = data_owner(cfg)
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    import sys

    if user and os.path.exists(runuser) and os.access(sys.argv[0], os.X_OK):
        os.execv(runuser, [runuser, "-u", user, "--", sys.argv[0], *sys.argv[1:]])


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON (for monitoring).")
@click.option("--only", default=None, help=f"Comma-separated checks to run: {', '.join(CHECK_NAMES)}.")
@click.option("--skip", default=None, help="Comma-separated checks to leave out.")
@click.option("--camera-seconds", type=float, default=5.0, show_default=True,
              help="How long to wait for camera frames.")
@click.pass_obj
def doctor_command(obj: Any, as_json: bool, only: str | None, skip: str | None, camera_seconds: float) -> None:
    """Check config, database, backups, disk, clock, services, camera, printer and modem."""
    _switch_to_data_owner(obj.config_path, getattr(obj, "overrides", {}) or {})
    ctx = Context(obj.config_path, getattr(obj, "overrides", {}) or {}, camera_seconds=camera_seconds)
    findings = run_checks(ctx, _names(only), _names(skip))
    if as_json:
        click.echo(json.dumps(report(findings), ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(render(findings, color=click.get_text_stream("stdout").isatty()))
    raise SystemExit(1 if any(f.state == ERROR for f in findings) else 0)
