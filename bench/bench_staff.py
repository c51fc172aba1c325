"""Staff dossier search on a large store (issue 7). Run by hand:

    .venv/bin/python bench/bench_staff.py [--rows 1000000] [--db DIR] [--samples 30]

Server time of GET /staff/dossiers?q=... through the Flask app for a signed-in official, against a
SQLite file of generated dossiers (bench_kiosk.build_db: the real migrations, then executemany),
per kind of query: an exact dossier code (unique index), a full phone number, part of a code, part
of a name, and a query that matches nothing (the worst case: every row is scanned).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_kiosk import build_db, code_for, pct


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--db", type=Path, default=None, help="reuse a folder made by an earlier run")
    ap.add_argument("--samples", type=int, default=30)
    args = ap.parse_args()

    from kiosk.app import create_app
    from kiosk.staff.testing import sign_in
    from motcua.config import load_config
    from motcua.db import make_engine

    data_dir = args.db or Path(tempfile.mkdtemp(prefix="bench-staff-"))
    if not (data_dir / "motcua.db").exists():
        build_db(data_dir, args.rows)
    cfg = load_config(None, {"paths": {"data_dir": str(data_dir)}})
    engine = make_engine(cfg)
    with engine.connect() as c:
        rows = c.exec_driver_sql("select count(*) from dossiers").scalar()
    app = create_app(cfg, engine)
    client = sign_in(app)
    n = rows // 3 + 1  # every 11th generated dossier has no phone; this one has
    queries = {
        "latest (empty)": "",
        "exact code": code_for(n),
        "full phone 09x": f"091{n % 10_000_000:07d}",
        "part of a code": f"-{n:07d}"[:-1],
        "part of a name": "Khách42",
        "no match": "không-có-hồ-sơ-này",
    }
    print(f"staff search, {rows:,} dossiers in {data_dir}, {args.samples} samples each (ms, server side)")
    for label, q in queries.items():
        client.get("/staff/dossiers", query_string={"q": q})  # warm-up
        times = []
        for _ in range(args.samples):
            t = time.perf_counter()
            resp = client.get("/staff/dossiers", query_string={"q": q})
            times.append((time.perf_counter() - t) * 1000)
            assert resp.status_code == 200
        found = resp.get_data(as_text=True).count('<td class="code">')
        print(f"  {label:<16} q={q!r:<32} median {statistics.median(times):8.1f}  p95 {pct(times, 95):8.1f}"
              f"  rows shown {found}")
    engine.dispose()


if __name__ == "__main__":
    main()
