"""Several `sms-gateway run` processes, each on its own emulated modem, draining one outbox: the
hall with more than one modem. Used by tests/test_sms_hall_gateways.py and bench/bench_sms_hall.py.

Each gateway gets its own config file: its station id, its modem, its data folder (gammurc, Gammu's
debug log); all share the one database URL.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import sqlalchemy as sa

from motcua.db import reading
from sms_gateway import outbox
from sms_gateway.health import list_modem_health
from sms_gateway.schema import notices
from tests.modem.harness import FAST_SMS, EmulatedModem


class HallGateway:
    """One gateway process and its emulated modem."""

    def __init__(self, root: Path, station: str, db_url: str, *, sms: dict[str, Any] | None = None,
                 modem: dict[str, Any] | None = None):
        from tests.conftest import write_config_file

        self.station = station
        self.name = f"{station}/modem"
        self.modem = EmulatedModem(root / f"modem-{station}")
        self.modem.scenario(status_reports=None)
        self.config = write_config_file(root / f"{station}.toml", {
            "station": {"id": station},
            "paths": {"data_dir": str(root / f"data-{station}")},
            "database": {"url": db_url},
            "sms": {**FAST_SMS, "encoding": "ascii", "delivery_reports": False, **(sms or {})},
            "modem": self.modem.modem_section(**(modem or {})),
        })
        self.log_path = root / f"{station}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "sms_gateway.cli", "--config", str(self.config), "run", *args]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self.proc

    def kill(self) -> None:
        """SIGKILL the gateway only; its modem process sees EOF and exits by itself."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout_s: float = 60) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def hung(self) -> bool:
        log = self.modem.dir / "commands.log"
        return log.exists() and "HANG on" in log.read_text()

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""


def wait_until(condition: Callable[[], bool], what: Callable[[], str], timeout_s: float = 300.0) -> None:
    """Wait for a condition, however slow the machine; the timeout only turns a hang into a failure."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {timeout_s:.0f} s for {what()}")
        time.sleep(0.1)


def ready(engine: sa.Engine, gateways: list[HallGateway]) -> bool:
    """Every gateway has found its modem working (and so polls the outbox)."""
    with reading(engine) as conn:
        seen = {h["gateway"]: h["state"] for h in list_modem_health(conn)}
    return all(seen.get(g.name) == "ok" for g in gateways)


def enqueue_batch(engine: sa.Engine, n: int, prefix: str = "hall") -> None:
    with engine.begin() as conn:
        for i in range(n):
            outbox.enqueue(conn, key=f"{prefix}-{i}", phone="0912345678", kind="text",
                           params={"text": f"Tin {prefix} {i:04d}"})


def open_count(engine: sa.Engine) -> int:
    """Notices not finished yet (queued, waiting to retry, or being sent)."""
    with reading(engine) as conn:
        return conn.execute(sa.select(sa.func.count()).where(
            notices.c.state.in_(("queued", "retry", "sending")))).scalar()


def tally(engine: sa.Engine, gateways: list[HallGateway]) -> dict[str, Any]:
    """What each modem received against what the outbox says, message by message."""
    received = {g.name: Counter(text for _, _, text in g.modem.messages()) for g in gateways}
    with reading(engine) as conn:
        rows = conn.execute(sa.select(notices.c.id, notices.c.params, notices.c.state, notices.c.holder)).all()
    out: dict[str, Any] = {"states": Counter(), "per_gateway": {g.name: 0 for g in gateways}, "twice": [],
                           "sent_not_received": [], "received_by_other_than_holder": [], "uncertain": []}
    for notice_id, params, state, holder in rows:
        text = json.loads(params)["text"]
        copies = {name: counts.get(text, 0) for name, counts in received.items()}
        total = sum(copies.values())
        out["states"][state] += 1
        if total > 1:
            out["twice"].append(notice_id)
        if state == "sent":
            if total != 1:
                out["sent_not_received"].append(notice_id)
            elif copies.get(holder) != 1:
                out["received_by_other_than_holder"].append(notice_id)
            else:
                out["per_gateway"][holder] += 1
        if state == "uncertain":
            out["uncertain"].append({"id": notice_id, "holder": holder, "received": total})
    out["pdus"] = {g.name: len(g.modem.raw_sent()) for g in gateways}
    return out
