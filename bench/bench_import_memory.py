"""`kiosk import` against hostile files (issue 17, cases 2 and 3), for one or more source trees.

    .venv/bin/python bench/bench_import_memory.py [--tree DIR ...] [--rows 690000] [--bomb-mb 512]

Each import runs as its own child process (`python -m kiosk.cli import FILE --errors report.csv`,
PYTHONPATH and cwd = the tree, a fresh data folder); its peak RSS comes from os.wait4's rusage, with
an address-space limit of 3 GiB and a 120 s deadline so a runaway import ends as a figure, not a
swapped machine. Files:
- bomb.xlsx: a few MB whose shared-strings table unzips to --bomb-mb MB of 100-byte strings;
- wide.xlsx: 100,000 rows that also have one cell in the last column (XFD);
- bad.csv: --rows rows whose status is unknown (every row an error), and good.csv, the same rows valid;
- partial.csv: 3,200 rows with year 0001 at row 1,100 and a non-UTF-8 byte at row 3,000 (case 3):
  exit code, dossiers committed, runs recorded.
"""
from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = "Mã hồ sơ,Trạng thái,Ngày hẹn trả,Người nộp\n"
SST = '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
SHEET_HEAD = ('<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
              'spreadsheetml/2006/main"><sheetData>')


def make_files(work: Path, rows: int, bomb_mb: int) -> dict[str, Path]:
    from openpyxl import Workbook

    files = {}
    wb = Workbook()
    wb.active.append(["Mã hồ sơ", "Trạng thái"])
    wb.active.append(["HS-2025-0001", "processing"])
    plain = work / "plain.xlsx"
    wb.save(plain)
    files["bomb.xlsx"] = work / "bomb.xlsx"
    # openpyxl writes inline strings: add a shared-strings part (and its relationship and content type)
    # of --bomb-mb MB of 100-byte entries, which openpyxl loads whole, one Python string each.
    rel = ('<Relationship Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
           'sharedStrings" Target="sharedStrings.xml" Id="rId99" /></Relationships>')
    ctype = ('<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
             'officedocument.spreadsheetml.sharedStrings+xml"/></Types>')
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(files["bomb.xlsx"], "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/_rels/workbook.xml.rels":
                data = data.decode().replace("</Relationships>", rel).encode()
            elif item.filename == "[Content_Types].xml":
                data = data.decode().replace("</Types>", ctype).encode()
            dst.writestr(item, data)
        with dst.open("xl/sharedStrings.xml", "w", force_zip64=True) as fh:
            fh.write(SST.encode())
            entry = b"<si><t>" + b"A" * 87 + b"</t></si>"
            chunk = entry * (2**20 // len(entry))
            for _ in range(bomb_mb):
                fh.write(chunk)
            fh.write(b"</sst>")
    files["wide.xlsx"] = work / "wide.xlsx"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(files["wide.xlsx"], "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            if item.filename not in ("xl/worksheets/sheet1.xml", "xl/sharedStrings.xml"):
                dst.writestr(item, src.read(item))
        dst.writestr("xl/sharedStrings.xml", f"{SST}</sst>")
        with dst.open("xl/worksheets/sheet1.xml", "w") as fh:
            fh.write(SHEET_HEAD.encode())
            fh.write(b'<row r="1"><c r="A1" t="inlineStr"><is><t>M\xc3\xa3 h\xe1\xbb\x93 s\xc6\xa1</t></is></c>'
                     b'<c r="B1" t="inlineStr"><is><t>Tr\xe1\xba\xa1ng th\xc3\xa1i</t></is></c></row>')
            for r in range(2, 100_002):
                fh.write(f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>HS-2025-{r:06d}</t></is></c>'
                         f'<c r="B{r}" t="inlineStr"><is><t>processing</t></is></c>'
                         f'<c r="XFD{r}" t="inlineStr"><is><t>x</t></is></c></row>'.encode())
            fh.write(b"</sheetData></worksheet>")
    for name, status in (("bad.csv", "khong-co-trang-thai"), ("good.csv", "processing")):
        files[name] = work / name
        with open(files[name], "w", encoding="utf-8") as fh:
            fh.write(HEADER)
            for i in range(rows):
                fh.write(f"000.00.21.H42-251125-{i:07d},{status},2026-01-05,Nguyễn Văn Hùng\n")
    files["partial.csv"] = work / "partial.csv"
    lines = [f"HS-2025-{i:06d},processing,{'0001-01-01' if i == 1098 else '2026-01-05'},Lan\n".encode()
             for i in range(3200)]
    lines[2998] = b"HS-2025-002998,processing,2026-01-05,Tr\xe2n\n"
    files["partial.csv"].write_bytes(HEADER.encode() + b"".join(lines))
    return files


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))


def run_import(tree: Path, file: Path, work: Path) -> dict:
    data = work / f"data-{tree.name}-{file.stem}"
    cfg = work / f"config-{tree.name}-{file.stem}.toml"
    cfg.write_text(f'[paths]\ndata_dir = "{data}"\n', encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    # Migrate first, so the measured child only imports.
    subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(cfg), "user", "list"], env=env, cwd=tree,
                   check=True, capture_output=True)
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "--config", str(cfg), "import", str(file),
                             "--errors", str(work / f"errors-{tree.name}-{file.stem}.csv")], env=env, cwd=tree,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_limit)
    status = None
    while status is None:
        pid, st, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            status = st
        elif time.monotonic() - t0 > 120:
            proc.kill()
            pid, st, usage = os.wait4(proc.pid, 0)
            status = "killed after 120 s"
        else:
            time.sleep(0.2)
    stderr = proc.stderr.read().decode(errors="replace").strip().splitlines()
    out = {"seconds": round(time.monotonic() - t0, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024),
           "exit": status if isinstance(status, str) else os.waitstatus_to_exitcode(status),
           "last_line": (stderr[-1] if stderr else "")[:160]}
    with sqlite3.connect(data / "motcua.db") as db:
        out["dossiers"] = db.execute("SELECT count(*) FROM dossiers").fetchone()[0]
        out["runs_recorded"] = db.execute("SELECT count(*) FROM ingest_runs").fetchone()[0]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", type=Path, action="append")
    ap.add_argument("--rows", type=int, default=690_000)
    ap.add_argument("--bomb-mb", type=int, default=512)
    ap.add_argument("--only", action="append", help="file names to run (default: all)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-import-"))
    files = make_files(work, args.rows, args.bomb_mb)
    for name, path in files.items():
        if args.only and name not in args.only:
            continue
        print(f"{name} ({path.stat().st_size / 2**20:.1f} MB on disk)")
        for tree in args.tree or [ROOT]:
            print(f"  {tree}: {run_import(tree.resolve(), path, work)}", flush=True)


if __name__ == "__main__":
    main()
