"""Benchmark: data in.

1. REST ingest of one 10,000-dossier JSON batch (POST /api/v1/dossiers through the Flask app),
   into a fresh SQLite file, then the same batch again (all unchanged).
2. `kiosk import` of CSV files of 20,000 and 100,000 rows into fresh SQLite files, each in its own
   process, reporting rows/s and that process's peak memory (ru_maxrss): the import streams, so
   peak memory must not grow with the file.

Run: .venv/bin/python bench/bench_ingest.py [--rows 100000]
Target: at least 5,000 rows/s for both paths on the development machine.
"""
from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kiosk.demo import generate

HEADER = {"code": "Mã hồ sơ", "secret": "Mã tra cứu", "procedure": "Thủ tục", "field": "Lĩnh vực",
          "applicant_name": "Người nộp", "phone": "Số điện thoại", "status": "Trạng thái",
          "appointment_date": "Ngày hẹn trả", "received_at": "Ngày tiếp nhận", "source_version": "Phiên bản"}

CHILD_IMPORT = """
import resource, sys, time, json
from pathlib import Path
from motcua.config import load_config
from motcua.db import make_engine
from kiosk.importer import import_file
cfg = load_config(None, {"paths": {"data_dir": sys.argv[1]}})
engine = make_engine(cfg)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
report, errors = import_file(engine, cfg, Path(sys.argv[2]))
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "created": report.created, "errors": len(errors),
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "before_kb": base}))
"""


def write_csv(path: Path, rows: int) -> None:
    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER.values())
        for rec in generate(rows, seed=7):
            w.writerow([rec.get(k) or "" for k in HEADER])


def bench_rest(tmp: Path, n: int = 10_000) -> None:
    from kiosk.app import create_app
    from motcua.config import load_config

    cfg = load_config(None, {"paths": {"data_dir": str(tmp / "rest")}, "ingest": {"api_token": "t", "max_batch": n}})
    app = create_app(cfg)
    client = app.test_client()
    body = json.dumps({"dossiers": list(generate(n, seed=3))}).encode()
    for label in ("new", "repeat"):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        r = client.post("/api/v1/dossiers", data=body, content_type="application/json",
                        headers={"Authorization": "Bearer t"})
        dt = time.perf_counter() - t
        assert r.status_code == 200, r.json
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"REST ingest {n:>7,} dossiers ({label:6}): {dt:6.2f} s  {n / dt:8,.0f} rows/s  "
              f"body {len(body) / 1e6:.1f} MB  "
              f"peak RSS {after / 1024:.0f} MB (+{(after - before) / 1024:.0f})  {r.json}")


def bench_import(tmp: Path, rows: int) -> dict:
    path = tmp / f"export-{rows}.csv"
    write_csv(path, rows)
    data = tmp / f"import-{rows}"
    out = subprocess.run([sys.executable, "-c", CHILD_IMPORT, str(data), str(path)], capture_output=True,
                         text=True, cwd=ROOT, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"CSV import  {rows:>7,} rows: {res['seconds']:6.2f} s  {rows / res['seconds']:8,.0f} rows/s  "
          f"file {path.stat().st_size / 1e6:.1f} MB  peak RSS {res['maxrss_kb'] / 1024:.0f} MB "
          f"(after start-up {res['before_kb'] / 1024:.0f} MB)  created {res['created']} errors {res['errors']}")
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=10_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as d:
        tmp = Path(d)
        bench_rest(tmp, args.batch)
        small = bench_import(tmp, args.rows // 5)
        large = bench_import(tmp, args.rows)
        growth = (large["maxrss_kb"] - small["maxrss_kb"]) / 1024
        print(f"peak memory growth from {args.rows // 5:,} to {args.rows:,} rows: {growth:+.1f} MB")


if __name__ == "__main__":
    main()
