"""`kiosk demo`: realistic sample data, receipt QR images that scan, and a second run changes nothing."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
import time_machine

from kiosk.demo import DEMO_CONFIG, generate, write_demo_config
from kiosk.store.schema import dossiers
from motcua.config import load_config
from motcua.phones import InvalidPhone, normalise_vn_mobile


def kiosk(*args, env=None):
    return subprocess.run([sys.executable, "-m", "kiosk.cli", *args], capture_output=True, text=True, timeout=120,
                          env=env)


def test_seed_only_twice_then_scan_a_receipt(tmp_path):
    data = tmp_path / "demo"
    first = kiosk("demo", "--seed-only", "--data-dir", str(data), "--count", "40")
    assert first.returncode == 0, first.stderr
    assert "Seeded 40 dossiers" in first.stdout and "(40 new" in first.stdout
    second = kiosk("demo", "--seed-only", "--data-dir", str(data), "--count", "40")
    assert "(0 new, 40 already there)" in second.stdout
    eng = sa.create_engine(f"sqlite:///{data / 'motcua.db'}")
    with eng.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(dossiers)) == 40
    eng.dispose()

    receipts = sorted((data / "receipts").glob("*.png"))
    assert receipts, "the demo writes receipt QR images"
    codes = set(re.findall(r"try code (\S+)", first.stdout))
    out = kiosk("--config", str(data / "config.toml"), "scan", "--image", *map(str, receipts))
    assert out.returncode == 0, out.stderr
    results = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(results) == len(receipts)
    assert all(r["dossier_code"] for r in results)
    assert codes <= {r["dossier_code"] for r in results}
    assert any(r["secret"] for r in results)  # URL and D-<secret>-<code> forms carry the lookup secret


def test_sample_data_looks_like_a_commune_hall():
    records = list(generate(500, seed=1))
    assert len({r["code"] for r in records}) == 500
    assert all(re.fullmatch(r"000\.00\.21\.H42-\d{6}-\d{4}", r["code"]) for r in records)
    names = {r["applicant_name"].split()[0] for r in records}
    assert {"Nguyễn", "Trần"} <= names
    valid = invalid = 0
    for r in records:
        if r["phone"] is None:
            continue
        try:
            assert normalise_vn_mobile(r["phone"]).startswith("+84")
            valid += 1
        except InvalidPhone:
            invalid += 1
    assert valid > 400 and invalid == 0  # old 11-digit numbers included, all remappable
    assert {r["status"] for r in records} >= {"processing", "releasing", "done", "waiting"}
    assert all(r["appointment_date"] >= r["received_at"][:10] for r in records)


def _processes_with_env(marker: str) -> list[int]:
    """Processes whose environment names this demo's config (all the demo's children)."""
    from pathlib import Path

    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def test_demo_runs_every_part_and_stops_them_all(tmp_path):
    import os
    import signal
    import time
    import urllib.request

    from tests.conftest import _free_port

    port = _free_port()
    data = tmp_path / "demo"
    demo = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "demo", "--data-dir", str(data), "--count", "30",
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    health = {}
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                    assert resp.status == 200
                    home = resp.read().decode()
                    # open around the clock: the home screen at any hour, marked as a demo
                    assert "Quét mã" in home and "Chế độ trình diễn · Demo" in home
                try:
                    raw = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
                except urllib.error.HTTPError as exc:  # 503 while a part is still starting
                    raw = exc.read()
                health = json.loads(raw)["checks"]
                if health["modem"].get("gateway_running") and health["camera"]["state"] == "ok" \
                        and health["printer"]["state"] == "ok":
                    break
            except (OSError, KeyError):
                pass
            time.sleep(0.5)
        assert health.get("modem", {}).get("gateway_running"), health
        assert health["camera"]["state"] == "ok" and health["printer"]["state"] == "ok", health
        marker = f"MOTCUA_CONFIG={data / 'config.toml'}"
        assert len(_processes_with_env(marker)) >= 4  # gateway, web app, print worker, scanner
    finally:
        demo.send_signal(signal.SIGTERM)
        out = demo.communicate(timeout=60)[0].decode()
    assert demo.returncode == 0, out[-2000:]
    deadline = time.monotonic() + 15
    while _processes_with_env(f"MOTCUA_CONFIG={data / 'config.toml'}") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_with_env(f"MOTCUA_CONFIG={data / 'config.toml'}") == []
    assert "Traceback" not in out, out[-3000:]
    assert os.path.exists(data / "receipts")


ALL_DAY_EVERY_DAY = [{"days": [0, 1, 2, 3, 4, 5, 6], "open": "00:00:00", "close": "00:00:00"}]


def _hours(cfg):
    return [p.model_dump(mode="json") for p in cfg.site.opening_hours]


def test_demo_config_opens_around_the_clock_and_says_it_is_a_demo(tmp_path):
    cfg = load_config(write_demo_config(tmp_path / "demo", 8080))
    assert cfg.site.demo is True
    assert _hours(cfg) == ALL_DAY_EVERY_DAY


def test_a_demo_folder_from_an_older_version_gets_the_around_the_clock_hours(tmp_path):
    data = tmp_path / "demo"
    data.mkdir()
    (data / "config.toml").write_text(DEMO_CONFIG.format(data_dir=data, port=8080), encoding="utf-8")
    path = write_demo_config(data, 8080)
    cfg = load_config(path)
    assert cfg.site.demo is True and _hours(cfg) == ALL_DAY_EVERY_DAY
    assert cfg.printer.target == f"{data}/printer.out"  # the rest of the old config kept
    write_demo_config(data, 8080)  # a third run adds nothing more
    assert path.read_text(encoding="utf-8").count("[site]") == 1


def test_a_demo_config_with_the_users_own_site_table_is_left_alone(tmp_path):
    data = tmp_path / "demo"
    data.mkdir()
    own = DEMO_CONFIG.format(data_dir=data, port=8080) + '\n[site]\ncommune_name = "Xã Gia Sinh"\n'
    (data / "config.toml").write_text(own, encoding="utf-8")
    assert write_demo_config(data, 8080).read_text(encoding="utf-8") == own


@pytest.mark.clock
def test_the_demo_shows_its_home_screen_at_any_hour_and_a_default_hall_follows_its_hours(tmp_path, make_config,
                                                                                         engine):
    from kiosk.app import create_app
    from motcua import hours

    demo_cfg = load_config(write_demo_config(tmp_path / "demo", 8080))
    home = create_app(demo_cfg, engine, test_config={"TESTING": True}).test_client().get("/").get_data(as_text=True)
    assert "Quét mã" in home and 'id="closed"' not in home
    hall = make_config()  # the default opening hours: closed at lunch, in the evening and on Sundays
    client = create_app(hall, engine, test_config={"TESTING": True}).test_client()
    with time_machine.travel(datetime.now(UTC), tick=False):  # the page and the check see the same instant
        page = client.get("/").get_data(as_text=True)
        assert ('id="closed"' in page) is not hours.is_open(hall.site), page[:2000]


def test_kiosk_screens_carry_the_demo_marker_only_in_a_demo_config(make_config, engine):
    from kiosk.app import create_app

    real = create_app(make_config(site={"opening_hours": ALL_DAY_EVERY_DAY}), engine,
                      test_config={"TESTING": True}).test_client()
    assert "demo-mark" not in real.get("/").get_data(as_text=True)
    demo = create_app(make_config(site={"opening_hours": ALL_DAY_EVERY_DAY, "demo": True}), engine,
                      test_config={"TESTING": True}).test_client()
    for path in ("/", "/code"):
        assert "Chế độ trình diễn · Demo" in demo.get(path).get_data(as_text=True)
    demo.get("/lang/en")
    assert ">Demo mode<" in demo.get("/").get_data(as_text=True)
