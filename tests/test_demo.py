"""`kiosk demo`: realistic sample data, receipt QR images that scan, and a second run changes nothing."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import sqlalchemy as sa

from kiosk.demo import generate
from kiosk.store.schema import dossiers
from sms_gateway.phones import InvalidPhone, normalise_vn_mobile


def kiosk(*args, env=None):  # noqa: ANN001, ANN002, ANN201
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
