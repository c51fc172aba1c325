"""Deployment files: systemd units (systemd-analyze verify and security), udev rules (udev's own
parser), and the kiosk browser launcher (real Chromium on a local page)."""
from __future__ import annotations

import http.server
import importlib.machinery
import importlib.util
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UNITS = REPO / "systemd"
RULES = REPO / "hardware" / "70-motcua.rules"
LAUNCHER = REPO / "hardware" / "kiosk-browser"
SERVICES = ["motcua-web", "motcua-scanner", "motcua-printer", "motcua-sms", "motcua-sync", "motcua-backup",
            "motcua-browser"]
ALL_UNITS = sorted(p.name for p in UNITS.iterdir() if p.suffix in (".service", ".timer", ".target"))

needs_systemd_analyze = pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze missing")


def read_unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values...]}} (systemd keys may repeat)."""
    unit: dict[str, dict[str, list[str]]] = {}
    section = None
    for line in (UNITS / name).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = unit.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def values(unit: dict, section: str, key: str) -> list[str]:
    return unit.get(section, {}).get(key, [])


def one(unit: dict, section: str, key: str) -> str:
    vals = values(unit, section, key)
    assert vals, f"[{section}] {key} missing"
    return vals[-1]


def exec_paths() -> set[str]:
    paths = set()
    for name in ALL_UNITS:
        unit = read_unit(name)
        if "Service" in unit:
            for key in ("ExecStart", "ExecStartPre", "ExecStartPost", "ExecStop"):
                for v in values(unit, "Service", key):
                    paths.add(shlex.split(v.lstrip("-@:+!"))[0])
    return paths


@pytest.fixture(scope="module")
def unit_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root filesystem where the units are installed the way hardware/setup.sh installs them.

    systemd-analyze verify --root resolves ExecStart= and unit dependencies inside this root, so the
    programs the units run exist there as executables and systemd's own units are copied in.
    """
    root = tmp_path_factory.mktemp("unitroot")
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    for path in exec_paths():
        exe = root / path.lstrip("/")
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text("#!/bin/sh\nexit 0\n")
        exe.chmod(0o755)
    dest = root / "etc/systemd/system"
    dest.mkdir(parents=True)
    for name in ALL_UNITS:
        shutil.copy(UNITS / name, dest / name)
    return root


def verify(root: Path, *units: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", "--man=no", *units],
        capture_output=True, text=True, timeout=60,
    )


@needs_systemd_analyze
def test_every_unit_passes_systemd_analyze_verify(unit_root: Path) -> None:
    assert len(ALL_UNITS) == 9, ALL_UNITS
    res = verify(unit_root, *ALL_UNITS)
    # verify exits 0 on unknown keys and bad values; it only warns. Any line is a defect.
    assert res.returncode == 0 and res.stderr.strip() == "" and res.stdout.strip() == "", res.stderr + res.stdout


@needs_systemd_analyze
def test_verify_catches_a_broken_unit(unit_root: Path, tmp_path: Path) -> None:
    """The check above can fail: a typo and a missing program are both reported."""
    bad = (UNITS / "motcua-sms.service").read_text().replace("Restart=always", "Restart=alwayz")
    bad = bad.replace("/opt/motcua/venv/bin/kiosk", "/opt/motcua/venv/bin/no-such-gateway")
    broken = unit_root / "etc/systemd/system/motcua-broken.service"
    broken.write_text(bad)
    try:
        res = verify(unit_root, "motcua-broken.service")
    finally:
        broken.unlink()
    assert "alwayz" in res.stderr
    assert "no-such-gateway" in res.stderr and res.returncode != 0


@needs_systemd_analyze
@pytest.mark.parametrize("service, threshold", [(s, 2.5) for s in SERVICES if s != "motcua-browser"]
                         + [("motcua-browser", 7.0)])
def test_services_are_hardened_by_systemds_own_measure(unit_root: Path, service: str, threshold: float) -> None:
    """`systemd-analyze security` exposure (0 best, 10 worst). The browser needs user namespaces
    for Chromium's sandbox and W+X memory for its JIT, so it cannot score as low as the daemons."""
    res = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", f"--root={unit_root}", f"--threshold={int(threshold * 10)}",
         f"{service}.service"], capture_output=True, text=True, timeout=60,
    )
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", res.stdout)
    assert level, res.stdout + res.stderr
    assert float(level.group(1)) <= threshold, res.stdout[-2000:]


@pytest.mark.parametrize("service", [s for s in SERVICES if s != "motcua-browser"])
def test_daemons_run_as_motcua_with_a_read_only_system_and_writable_data(service: str) -> None:
    unit = read_unit(f"{service}.service")
    assert one(unit, "Service", "User") == "motcua"
    assert one(unit, "Service", "ProtectSystem") == "strict"
    assert one(unit, "Service", "StateDirectory") == "motcua"  # /var/lib/motcua, writable under strict
    assert one(unit, "Service", "PrivateTmp") == "yes"
    assert one(unit, "Service", "NoNewPrivileges") == "yes"
    env = values(unit, "Service", "Environment")
    assert "MOTCUA_CONFIG=/etc/motcua/config.toml" in env and "MOTCUA_DATA_DIR=/var/lib/motcua" in env


@pytest.mark.parametrize("service, command, group", [
    ("motcua-web", "/opt/motcua/venv/bin/kiosk serve", None),
    ("motcua-scanner", "/opt/motcua/venv/bin/kiosk scan --camera", "video"),
    ("motcua-printer", "/opt/motcua/venv/bin/kiosk print-worker", "lp"),
    ("motcua-sms", "/opt/motcua/venv/bin/kiosk sms-gateway", "dialout"),
    ("motcua-sync", "/opt/motcua/venv/bin/kiosk sync", None),
    ("motcua-backup", "/opt/motcua/venv/bin/kiosk backup --keep 14", None),
])
def test_each_device_belongs_to_one_service_through_its_group(service: str, command: str, group: str | None) -> None:
    unit = read_unit(f"{service}.service")
    assert one(unit, "Service", "ExecStart") == command
    groups = " ".join(values(unit, "Service", "SupplementaryGroups")).split()
    if group is None:
        assert groups == [] and one(unit, "Service", "PrivateDevices") == "yes"
    else:
        assert group in groups
    others = {"video", "lp", "dialout"} - {group}
    if service != "motcua-printer":  # a serial printer also needs dialout
        assert not others & set(groups)


@pytest.mark.parametrize("service", ["motcua-scanner", "motcua-printer", "motcua-sms", "motcua-browser"])
def test_device_owners_keep_hotplugged_devices_reachable(service: str) -> None:
    """Any DeviceAllow= (also the one ProtectClock= implies) closes all other devices, and names like
    char-ttyUSB resolve only if the driver was loaded when the service started: a modem plugged in
    later would stay unreachable. Device access goes through groups instead."""
    unit = read_unit(f"{service}.service")["Service"]
    for key in ("ProtectClock", "DeviceAllow", "DevicePolicy", "PrivateDevices"):
        assert key not in unit, key


@pytest.mark.parametrize("service", [s for s in SERVICES if s != "motcua-browser"])
def test_the_command_each_unit_runs_exists(service: str) -> None:
    """The unit's command line, pointed at this checkout's venv, is accepted by the real CLI."""
    argv = shlex.split(one(read_unit(f"{service}.service"), "Service", "ExecStart"))
    assert argv[0].startswith("/opt/motcua/venv/bin/")
    exe = Path(sys.executable).with_name(Path(argv[0]).name)
    res = subprocess.run([str(exe), *argv[1:], "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "Usage:" in res.stdout, res.stderr


def test_sms_gateway_is_watched_by_systemd() -> None:
    unit = read_unit("motcua-sms.service")
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "Restart") == "always"
    # longer than Gammu's ~100 s send timeout, so a slow send is not taken for a hang
    assert int(one(unit, "Service", "WatchdogSec")) > 100


def test_browser_runs_chromium_under_cage_on_tty1_and_comes_back() -> None:
    unit = read_unit("motcua-browser.service")
    argv = shlex.split(one(unit, "Service", "ExecStart"))
    assert argv[0] == "/usr/bin/cage" and argv[-1] == "/opt/motcua/bin/kiosk-browser"
    assert one(unit, "Service", "TTYPath") == "/dev/tty1"
    assert one(unit, "Service", "Restart") == "always"
    assert one(unit, "Service", "User") == "motcua-screen"  # cannot read the database
    assert "getty@tty1.service" in " ".join(values(unit, "Unit", "Conflicts"))
    assert one(unit, "Service", "ProtectSystem") == "strict"


def test_backup_timer_and_target_pull_everything_in() -> None:
    timer = read_unit("motcua-backup.timer")
    assert values(timer, "Timer", "OnCalendar") and one(timer, "Timer", "Persistent") == "true"
    target = read_unit("motcua.target")
    wants = " ".join(values(target, "Unit", "Wants")).split()
    assert sorted(wants) == sorted([f"{s}.service" for s in SERVICES if s != "motcua-backup"] + ["motcua-backup.timer"])


# --- udev rules -----------------------------------------------------------------------------------

MATCH_ONLY = {"ACTION", "DEVPATH", "KERNEL", "KERNELS", "SUBSYSTEM", "SUBSYSTEMS", "DRIVER", "DRIVERS",
              "ATTRS", "TAGS", "TEST", "PROGRAM", "RESULT", "CONST"}
ASSIGN_ONLY = {"NAME", "SYMLINK", "OWNER", "GROUP", "MODE", "SECLABEL", "RUN", "LABEL", "GOTO", "IMPORT",
               "OPTIONS"}
BOTH = {"ATTR", "SYSCTL", "ENV", "TAG", "SYMLINK", "NAME"}
TOKEN = re.compile(r'\s*([A-Z_]+)(\{[^}]*\})?\s*(==|!=|\+=|-=|:=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def parse_rules(text: str) -> list[tuple[int, list[tuple[str, str, str, str]]]]:
    rules = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pos, tokens = 0, []
        while pos < len(line):
            m = TOKEN.match(line, pos)
            assert m, f"line {n}: cannot parse from {line[pos:]!r}"
            tokens.append((m.group(1), m.group(2) or "", m.group(3), m.group(4)))
            pos = m.end()
        rules.append((n, tokens))
    return rules


def test_udev_rules_are_well_formed() -> None:
    rules = parse_rules(RULES.read_text())
    labels = {v for _, toks in rules for k, _, op, v in toks if k == "LABEL"}
    for n, toks in rules:
        for key, attr, op, value in toks:
            assert key in MATCH_ONLY | ASSIGN_ONLY | BOTH, f"line {n}: unknown key {key}"
            if key in MATCH_ONLY:
                assert op in ("==", "!="), f"line {n}: {key} only matches"
            if key in ASSIGN_ONLY - BOTH:
                assert op in ("=", "+=", ":="), f"line {n}: {key} only assigns"
            if key in ("ATTR", "ATTRS", "ENV", "IMPORT"):
                assert attr, f"line {n}: {key} needs {{...}}"
            if key == "GOTO":
                assert value in labels, f"line {n}: GOTO {value} has no LABEL"
            if key == "MODE":
                assert re.fullmatch(r"0[0-7]{3}", value)
        if any(k == "SYMLINK" for k, *_ in toks):
            assert any(op in ("==", "!=") for _, _, op, _ in toks), f"line {n}: a name for every device?"


def test_udev_rules_name_the_three_devices_and_keep_modemmanager_off() -> None:
    rules = parse_rules(RULES.read_text())
    names = {v for _, toks in rules for k, _, op, v in toks if k == "SYMLINK"}
    assert names == {"motcua-modem", "motcua-printer", "motcua-camera"}
    ignored = {v for _, toks in rules for k, attr, op, v in toks if k == "ATTRS" and attr == "{idVendor}"
               and any(k2 == "ENV" and a2 == "{ID_MM_DEVICE_IGNORE}" and v2 == "1" for k2, a2, _, v2 in toks)}
    named = {v for _, toks in rules for k, attr, op, v in toks if k == "ENV" and attr == "{ID_VENDOR_ID}"
             and any(k2 == "SYMLINK" and v2 == "motcua-modem" for k2, _, _, v2 in toks)}
    assert named == {"1e0e", "2c7c", "12d1"} and ignored == named  # SIMCom, Quectel, Huawei
    for _, toks in rules:  # the modem's AT port is picked by interface number
        if any(k == "SYMLINK" and v == "motcua-modem" for k, _, _, v in toks):
            assert any(a == "{ID_USB_INTERFACE_NUM}" for _, a, _, _ in toks)


def _can_private_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("unshare") is not None and shutil.which("udevadm") is not None


@pytest.mark.skipif(not _can_private_mount(), reason="needs root, unshare and udevadm")
def test_udev_itself_accepts_the_rules(tmp_path: Path) -> None:
    """udevadm (systemd 252 has no `udevadm verify`) loads the rules during `udevadm test`; our file
    is bind-mounted over /etc/udev/rules.d in a private mount namespace, so the host is untouched."""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "70-motcua.rules").write_text(RULES.read_text().replace('SYMLINK+="motcua-camera"', 'SYMLNK+="x"'))
    good = tmp_path / "good"
    good.mkdir()
    shutil.copy(RULES, good / "70-motcua.rules")
    script = 'mount --bind "$1" /etc/udev/rules.d && udevadm test /sys/class/net/lo 2>&1'
    out = {}
    for name in ("good", "bad"):
        res = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                              str(tmp_path / name)], capture_output=True, text=True, timeout=60)
        out[name] = [line for line in res.stdout.splitlines() if "70-motcua.rules" in line]
    assert out["good"] == ["Reading rules file: /etc/udev/rules.d/70-motcua.rules"], out["good"]
    assert any("Invalid key 'SYMLNK'" in line for line in out["bad"]), out["bad"]  # the check can fail


# --- the kiosk browser launcher -------------------------------------------------------------------

def _launcher_module():
    loader = importlib.machinery.SourceFileLoader("kiosk_browser", str(LAUNCHER))
    spec = importlib.util.spec_from_loader("kiosk_browser", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "WAYLAND_DISPLAY"}
    env.update(MOTCUA_BROWSER_PROFILE=str(tmp_path / "profile"), HOME=str(tmp_path))
    env.update(extra)
    return env


DOMAIN_FLAGS = ["--kiosk", "--noerrdialogs", "--disable-session-crashed-bubble", "--disable-pinch",
                "--overscroll-history-navigation=0", "--no-first-run", "--disable-background-networking"]


def test_launcher_command_has_the_kiosk_flags(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, str(LAUNCHER), "--print-command"], capture_output=True, text=True,
                         env=_env(tmp_path, MOTCUA_KIOSK_URL="http://127.0.0.1:9999/",
                                  MOTCUA_BROWSER="/usr/bin/chromium", WAYLAND_DISPLAY="wayland-0"), timeout=30)
    argv = shlex.split(res.stdout)
    assert argv[0] == "/usr/bin/chromium" and argv[-1] == "http://127.0.0.1:9999/"
    for flag in DOMAIN_FLAGS:
        assert flag in argv
    translate = [a for a in argv if a.startswith("--disable-features=")]
    assert len(translate) == 1 and "TranslateUI" in translate[0].split("=", 1)[1].split(",")
    assert f"--user-data-dir={tmp_path / 'profile'}" in argv
    assert "--ozone-platform=wayland" in argv  # under cage


def test_launcher_gives_up_when_the_app_never_answers(tmp_path: Path) -> None:
    port = _free_port()
    res = subprocess.run([sys.executable, str(LAUNCHER)], capture_output=True, text=True, timeout=30,
                         env=_env(tmp_path, MOTCUA_KIOSK_URL=f"http://127.0.0.1:{port}/", MOTCUA_KIOSK_WAIT_S="1",
                                  MOTCUA_BROWSER="/bin/false"))
    assert res.returncode == 1
    assert "did not answer" in res.stderr and f"127.0.0.1:{port}" in res.stderr


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian chromium not installed")
def test_launcher_waits_for_the_app_then_chromium_shows_it(tmp_path: Path) -> None:
    """The web app comes up after the launcher started; real Chromium, with the kiosk flags plus
    headless ones for the test, then loads the page."""
    port = _free_port()
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text(
        '<html><head><meta charset="utf-8"></head><body><h1 id="hello">Tra cứu hồ sơ</h1></body></html>',
        encoding="utf-8")

    def handler(*a, **k):
        return http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path / "www"), **k)

    flags = ("--headless=new --no-sandbox --disable-gpu --disable-component-update --disable-sync "
             "--disable-quic --dump-dom")
    proc = subprocess.Popen([sys.executable, str(LAUNCHER)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env(tmp_path, MOTCUA_KIOSK_URL=f"http://127.0.0.1:{port}/",
                                                MOTCUA_KIOSK_WAIT_S="60", MOTCUA_BROWSER="/usr/bin/chromium",
                                                MOTCUA_BROWSER_FLAGS=flags))
    time.sleep(1.0)
    assert proc.poll() is None  # still waiting: no browser on a dead URL
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        out, err = proc.communicate(timeout=90)
    finally:
        server.shutdown()
        server.server_close()
        if proc.poll() is None:
            proc.kill()
    assert "waiting for" in err and "starting /usr/bin/chromium" in err
    assert '<h1 id="hello">Tra cứu hồ sơ</h1>' in out


def test_launcher_clears_chromiums_crash_flag(tmp_path: Path) -> None:
    """After a power cut Chromium would offer to restore the last session on the citizen's screen."""
    mod = _launcher_module()
    prefs = tmp_path / "Default" / "Preferences"
    prefs.parent.mkdir()
    prefs.write_text(json.dumps({"profile": {"exit_type": "Crashed", "exited_cleanly": False, "name": "x"}}))
    mod.mark_clean_exit(tmp_path)
    data = json.loads(prefs.read_text())
    assert data["profile"] == {"exit_type": "Normal", "exited_cleanly": True, "name": "x"}
