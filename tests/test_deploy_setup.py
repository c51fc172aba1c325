"""hardware/setup.sh run for real, twice, into a throwaway root (see tests/deploy/overlay_setup.sh):
every step executes (apt installs cage and overlayroot, useradd, venv + pip, systemctl enable, boot
config edits), the second run changes nothing, and the installed units verify against the real
installed programs."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("systemd-analyze"),
                       reason="needs root (mount namespace, overlay, chroot), unshare and systemd-analyze"),
]


def _frozen_source(dest: Path) -> Path:
    """A still copy of the checkout (others keep editing it while the test runs)."""
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           capture_output=True, check=True).stdout.split(b"\0")
    for f in filter(None, files):
        src = REPO / f.decode()
        if src.is_file():
            (dest / f.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f.decode())
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = _frozen_source(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("out")
    res = subprocess.run(["unshare", "-m", "--propagation", "private", "bash",
                          str(src / "tests/deploy/overlay_setup.sh"), str(src), str(out)],
                         capture_output=True, text=True, timeout=600)
    assert (out / "run1.rc").exists(), res.stdout + res.stderr
    (out / "src").symlink_to(src)
    return out


def text(out: Path, name: str) -> str:
    return (out / name).read_text(encoding="utf-8", errors="replace")


def test_first_run_installs_everything(installed: Path) -> None:
    log = text(installed, "run1.log")
    assert text(installed, "run1.rc").strip() == "0", log[-3000:]
    assert "changed: installed the application into /opt/motcua/venv" in log
    assert "cage install ok installed" in text(installed, "cage")
    print(f"setup run 1: {text(installed, 'run1.seconds').strip()} s, "
          f"run 2: {text(installed, 'run2.seconds').strip()} s")


def test_the_venv_has_the_pinned_versions_and_no_postgresql_driver_for_sqlite(installed: Path) -> None:
    pins = dict(line.split("==") for line in text(installed, "src/constraints.txt").splitlines()
                if line and not line.startswith("#"))
    got = {name: version for name, version in (line.split("==") for line in text(installed, "freeze").splitlines()
                                                if "==" in line)
           if name.lower().replace("_", "-") != "motcua-kiosk"}
    assert got and {n: (v, pins.get(n)) for n, v in got.items() if pins.get(n) != v} == {}
    assert "Flask" in got and "limits" in got
    assert not {"psycopg", "psycopg-binary"} & set(got)  # the sample config is SQLite: no driver


def test_second_run_changes_nothing(installed: Path) -> None:
    log = text(installed, "run2.log")
    assert text(installed, "run2.rc").strip() == "0", log[-3000:]
    assert "changed:" not in log and log.rstrip().endswith("setup: done, 0 change(s)"), log
    # and the file system agrees: every path the script touched is byte- and mtime-identical
    snap1, snap2 = text(installed, "snap1"), text(installed, "snap2")
    assert len(snap1.splitlines()) > 1000  # the snapshot really covers the install (venv, units, ...)
    assert snap1 == snap2


def test_users_groups_and_permissions(installed: Path) -> None:
    passwd = text(installed, "passwd")
    assert "motcua:x:" in passwd and ":/var/lib/motcua:/usr/sbin/nologin" in passwd
    assert "motcua-screen:x:" in passwd
    assert set(text(installed, "groups").split()) >= {"motcua", "dialout", "lp", "video"}
    perms = dict(line.split(" ", 1) for line in text(installed, "perms").splitlines())
    assert perms["/etc/motcua/config.toml"] == "640 root motcua"  # secrets (api token) not world-readable
    assert perms["/var/lib/motcua"] == "750 motcua motcua"
    assert perms["/var/lib/motcua-screen"] == "700 motcua-screen motcua-screen"


def test_units_are_enabled_and_verify_against_the_installed_programs(installed: Path) -> None:
    assert text(installed, "enabled").split() == ["enabled"] * 8
    assert "multi-user.target.wants/motcua.target" in text(installed, "wants")
    log = text(installed, "verify.log")
    assert text(installed, "verify.rc").strip() == "0" and log.strip() == "", log


def test_config_browser_env_and_boot_files(installed: Path) -> None:
    files = installed / "files"
    src = installed / "src"  # the frozen checkout that was installed
    assert (files / "etc/motcua/config.toml").read_text() == (src / "config.sample.toml").read_text()
    assert (files / "etc/motcua/browser.env").read_text().splitlines()[-1] == "MOTCUA_KIOSK_URL=http://127.0.0.1:8080/"
    screen = (files / "etc/motcua/screen.env").read_text().splitlines()
    assert "MOTCUA_CAGE_FLAGS=" in screen and "MOTCUA_BROWSER_FLAGS=" in screen  # rotation, left to IT
    config_txt = (files / "boot/firmware/config.txt").read_text().splitlines()
    assert config_txt.count("dtparam=watchdog=on") == 1 and config_txt[:2] == ["[all]", "arm_64bit=1"]
    cmdline = (files / "boot/firmware/cmdline.txt").read_text()
    assert cmdline.count("\n") == 1 and cmdline.split().count("consoleblank=0") == 1 and "rootwait" in cmdline
    assert "RuntimeWatchdogSec=15s" in (files / "etc/systemd/system.conf.d/motcua-watchdog.conf").read_text()
    assert "pam_systemd.so" in (files / "etc/pam.d/motcua-kiosk").read_text()
    assert (files / "etc/udev/rules.d/70-motcua.rules").read_text() == (src / "hardware/70-motcua.rules").read_text()


def test_read_only_root_keeps_the_data_partition_writable(installed: Path) -> None:
    files = installed / "files"
    fstab = [line.split() for line in (files / "etc/fstab").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    data = [fields for fields in fstab if fields[1] == "/var/lib/motcua"]
    assert data == [["LABEL=MOTCUA-DATA", "/var/lib/motcua", "ext4",
                     "defaults,noatime,nofail,x-systemd.device-timeout=20s", "0", "2"]]
    assert 'overlayroot="tmpfs:recurse=0"' in (files / "etc/overlayroot.local.conf").read_text()
    # the journal would otherwise fill the RAM overlay
    assert "Storage=volatile" in (files / "etc/systemd/journald.conf.d/motcua.conf").read_text().splitlines()


def test_installed_commands_run_as_the_service_user(installed: Path) -> None:
    """`kiosk` in the installed root: the database is created by and belongs to motcua, the backup
    works, and the doctor's checks pass there (devices and systemd are not in a chroot)."""
    assert text(installed, "backup.rc").strip() == "0", text(installed, "backup.log")
    owners = text(installed, "data-owners").splitlines()
    assert len(owners) == 2 and all(line.endswith(" motcua motcua") for line in owners), owners
    report = json.loads(text(installed, "doctor.json"))
    states = {c["name"]: c["state"] for c in report["checks"]}
    assert states == {"config": "ok", "database": "ok", "backup": "ok", "disk": "ok", "station": "ok",
                      "source": "skipped", "printer": "warning"}, report
    assert report["checks"][0]["data"]["path"] == "/etc/motcua/config.toml"
    assert text(installed, "doctor.rc").strip() == "0"


def test_root_running_the_doctor_leaves_no_root_owned_files(installed: Path) -> None:
    assert "database (cơ sở dữ liệu)   /var/lib/motcua/motcua.db: writable" in text(installed, "doctor-root.log")
    assert text(installed, "root-owned").strip() == ""
