"""`kiosk demo`: realistic sample data, receipt QR images that scan, and a second run changes nothing."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import sqlalchemy as sa

from kiosk.demo import generate
from kiosk.store.schema import dossiers
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
                    assert "Quét mã" in resp.read().decode()
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
