"""A hostile hall (issue 17, cases 1, 4 and 10) against real gunicorn, for one or more source trees.

    .venv/bin/python bench/bench_abuse.py [--tree DIR ...]     # default: this tree

For each tree: a fresh data folder, `kiosk serve` (2 workers) started with PYTHONPATH=DIR, then
- tickets: 1,005 `POST /queue/tickets` from the kiosk's own address as fast as one client goes,
  then 100 `POST /slip` for one dossier (each with its own page key): tickets issued, the last label,
  the largest wait estimate, print jobs queued, seconds;
- lookups: 2,000 `POST /lookup` from the kiosk's own address: answered (200) against refused (429)
  (then a minute's pause: slip screens share the station's lookup budget);
- sign-in: 40 parallel wrong passwords for `admin` from 4 LAN addresses (127.0.0.2-5, 10 each,
  argon2 at the production cost), then the right password from each of those 4 addresses and from a
  fifth one (the admin's own PC): wrong passwords that were checked (401) and how many got in.
Run the same script on the old and the new tree in one run so the figures share the machine.
"""
from __future__ import annotations

import argparse
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "dung-mat-khau-2025"
CODE = "000.00.21.H42-251125-0001"
TOKEN_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
CONFIG = """
[paths]
data_dir = "{data}"
[ingest]
api_token = "bench-token-0123456789"
[staff]
login_rate = "1000 per minute"
[[site.opening_hours]]
days = [0, 1, 2, 3, 4, 5, 6]
open = 00:00:00
close = 23:59:59
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kiosk(tree: Path, cfg: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    # cwd=tree too: `python -m` puts the working directory first on sys.path.
    return subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(cfg), *args], env=env, cwd=tree,
                          check=True, capture_output=True, text=True, **kw)


def start(tree: Path, work: Path) -> tuple[subprocess.Popen, str, Path]:
    data = work / "data"
    cfg = work / "config.toml"
    cfg.write_text(CONFIG.format(data=data), encoding="utf-8")
    _kiosk(tree, cfg, "user", "add", "admin", "--role", "admin", "--password", PASSWORD)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(tree)}
    log = open(work / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "--config", str(cfg), "serve", "--bind",
                             f"127.0.0.1:{port}", "--workers", "2"], env=env, cwd=tree, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/code", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        raise RuntimeError(f"server did not start: {(work / 'server.log').read_text()[-2000:]}")
    r = httpx.post(url + "/api/v1/dossiers", json=[{"code": CODE, "status": "processing", "procedure": "Khai sinh"}],
                   headers={"Authorization": "Bearer bench-token-0123456789"})
    r.raise_for_status()
    return proc, url, data


def tickets_and_slips(url: str, data: Path) -> dict:
    out: dict = {}
    with httpx.Client(base_url=url, timeout=30) as c:
        t0 = time.perf_counter()
        answers = [c.post("/queue/tickets", json={"service": "DD"}) for _ in range(1005)]
        out["ticket_s"] = round(time.perf_counter() - t0, 1)
        issued = [a.json()["ticket"] for a in answers if a.status_code == 201]
        out["tickets_issued"] = len(issued)
        out["last_label"] = issued[-1]["label"] if issued else None
        out["max_wait_min"] = max((t["estimated_wait_min"] for t in issued), default=0)
        out["ticket_refusals"] = {code: sum(a.status_code == code for a in answers)
                                  for code in sorted({a.status_code for a in answers}) if code != 201}
        lookups_out = lookups(c)
        # Slip screens share the station's lookup budget: let that minute run out first.
        time.sleep(61)
        t0 = time.perf_counter()
        slips = [c.post("/slip", data={"code": CODE, "request_key": f"{i:032x}"}) for i in range(100)]
        out["slip_s"] = round(time.perf_counter() - t0, 1)
        out["slip_answers"] = sum(s.status_code == 200 for s in slips)
    out.update(lookups_out)
    with sqlite3.connect(data / "motcua.db") as db:
        out["print_jobs"] = dict(db.execute("SELECT kind, count(*) FROM print_jobs GROUP BY kind").fetchall())
    return out


def lookups(c: httpx.Client) -> dict:
    t0 = time.perf_counter()
    codes = [c.post("/lookup", data={"code": CODE, "source": "wedge"}).status_code for _ in range(2000)]
    return {"lookup_s": round(time.perf_counter() - t0, 1), "lookups_answered": codes.count(200),
            "lookups_refused": codes.count(429)}


def _client(url: str, address: str) -> tuple[httpx.Client, str]:
    c = httpx.Client(base_url=url, timeout=120, transport=httpx.HTTPTransport(local_address=address))
    # Connection: close, so the POST opens a fresh connection (gunicorn drops idle keep-alives after 2 s).
    token = TOKEN_RE.search(c.get("/staff/login", headers={"Connection": "close"}).text).group(1)
    return c, token


def sign_in_storm(url: str) -> dict:
    addresses = [f"127.0.0.{i}" for i in range(2, 6)]
    clients = {a: [_client(url, a) for _ in range(10)] for a in addresses}
    barrier = threading.Barrier(40)

    def attempt(job: tuple[str, int]) -> int:
        address, i = job
        c, token = clients[address][i]
        barrier.wait()
        return c.post("/staff/login", data={"username": "admin", "password": f"sai-{i}", "csrf_token": token},
                      follow_redirects=False).status_code

    with ThreadPoolExecutor(40) as pool:
        codes = list(pool.map(attempt, [(a, i) for a in addresses for i in range(10)]))
    right = []
    for address in addresses + ["127.0.0.6"]:
        c, token = _client(url, address)
        right.append(c.post("/staff/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token},
                            follow_redirects=False).status_code)
    return {"wrong_checked_401": codes.count(401), "wrong_refused_429": codes.count(429),
            "right_pw_signed_in_from_guessing_addresses": sum(code == 302 for code in right[:4]),
            "right_pw_from_admins_own_pc": "signed in" if right[4] == 302 else f"refused ({right[4]})"}


def run(tree: Path) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-abuse-"))
    proc, url, data = start(tree, work)
    try:
        return {**tickets_and_slips(url, data), **sign_in_storm(url),
                "server_errors_500": (work / "server.log").read_text().count('HTTP/1.1" 500')}
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", type=Path, action="append", help="source tree to run (repeat); default: this one")
    args = ap.parse_args()
    for tree in args.tree or [ROOT]:
        result = run(tree.resolve())
        print(f"{tree}:")
        for k, v in result.items():
            print(f"  {k}: {v}")


if __name__ == "__main__":
    main()
