"""Crash harness: SIGKILL `sms-gateway run` at random moments while it sends through the emulated
modem, restart it each time, then count what the modem received against what the outbox says.

Used by tests/test_sms_crash.py and bench/bench_sms.py.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from motcua.config import load_config
from motcua.db import make_engine
from sms_gateway import outbox
from sms_gateway.schema import notices
from tests.modem.harness import FAST_SMS, EmulatedModem


def _wait_for_ready(path: Path, offset: int, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        with open(path, "rb") as fh:
            fh.seek(offset)
            if b"modem ready" in fh.read():
                return
        time.sleep(0.02)


def crash_run(root: Path, *, notices_count: int, kills: int, seed: int = 1,
              kill_after: tuple[float, float] = (0.8, 3.0), reports: bool = False,
              distinct_numbers: bool = False, resolve_wait_s: float = 1.0,
              after_ready: bool = False) -> dict[str, Any]:
    """With `reports`, the emulated network keeps each message's delivery report in the modem's
    memory (it reaches the modem whatever becomes of the gateway), so a gateway that resolves
    uncertain notices by their reports can; `distinct_numbers`: one number per notice, as in a hall.
    `after_ready`: each kill comes `kill_after` seconds after that start logged "modem ready" (a
    start that never gets there within 60 s is killed then), so every life has its first send in reach."""
    from motcua.config import SmsConfig
    from tests.conftest import write_config_file

    rng = random.Random(seed)
    modem = EmulatedModem(root / "modem")
    modem.scenario(status_reports="delivered" if reports else None, store_status_reports=reports)
    sms: dict[str, Any] = {**FAST_SMS, "encoding": "ascii", "delivery_reports": reports}
    resolves = reports and "resolve_wait_s" in SmsConfig.model_fields  # absent from the baseline code
    if resolves:
        sms.update(resolve_wait_s=resolve_wait_s, resolve_min_reports=2)
    cfg_path = write_config_file(root / "gw.toml", {
        "paths": {"data_dir": str(root / "data")}, "sms": sms, "modem": modem.modem_section(),
    })
    engine = make_engine(load_config(cfg_path))
    with engine.begin() as conn:
        for i in range(notices_count):
            phone = f"0912{i:06d}" if distinct_numbers else "0912345678"
            outbox.enqueue(conn, key=f"crash-{i}", phone=phone, kind="text", params={"text": f"Tin so {i:04d}"})
    cmd = [sys.executable, "-m", "sms_gateway.cli", "--config", str(cfg_path), "run"]
    log = open(root / "gateway.log", "ab")
    killed = 0
    started = time.monotonic()
    left = notices_count
    for _ in range(kills):
        offset = (root / "gateway.log").stat().st_size
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        delay = rng.uniform(*kill_after)
        if after_ready:
            _wait_for_ready(root / "gateway.log", offset, proc, timeout_s=60)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)  # the gateway only; its modem sees EOF and exits by itself
        proc.wait()
        killed += 1
        with engine.connect() as conn:
            left = conn.execute(sa.select(sa.func.count()).where(
                notices.c.state.in_(("queued", "retry", "sending")))).scalar()
        if not left:
            break
    final = subprocess.run([*cmd, "--until-idle"], stdout=log, stderr=subprocess.STDOUT, timeout=900)
    with engine.connect() as conn:
        uncertain_at_end = conn.execute(sa.select(sa.func.count()).where(notices.c.state == "uncertain")).scalar()
    if resolves and uncertain_at_end:
        # The daemon runs on: once the wait has passed, one more run settles what the reports allow.
        time.sleep(resolve_wait_s + 0.5)
        final = subprocess.run([*cmd, "--until-idle"], stdout=log, stderr=subprocess.STDOUT, timeout=900)
    elapsed = time.monotonic() - started
    with engine.connect() as conn:
        rows = conn.execute(sa.select(notices.c.params, notices.c.state)).all()
        auto = conn.execute(sa.text("SELECT detail FROM notice_events WHERE actor = 'gateway' "
                                    "AND from_state = 'uncertain'")).scalars().all()
    engine.dispose()
    received = Counter(text for _, _, text in modem.messages())
    states = Counter(state for _, state in rows)
    lost = duplicated = uncertain_sent = 0
    for params, state in rows:
        text = __import__("json").loads(params)["text"]
        n = received.get(text, 0)
        if state == "sent" and n != 1:
            lost += n == 0
            duplicated += n > 1
        elif state == "uncertain":
            uncertain_sent += n == 1
            duplicated += n > 1
        elif state in ("queued", "retry", "sending", "failed", "cancelled"):
            lost += 1
    return {
        "notices": notices_count, "kills": killed, "final_exit": final.returncode, "seconds": round(elapsed, 1),
        "left_for_the_clean_run": left,  # notices the last, unkilled run still had to send
        "sent": states["sent"], "uncertain": states["uncertain"], "uncertain_that_went_out": uncertain_sent,
        "lost": lost, "duplicated": duplicated, "modem_received": sum(received.values()),
        "resolved_by_report": sum(1 for d in auto if "resolved by" in d),
        "resent_automatically": sum(1 for d in auto if "sent again once" in d),
        "other_states": {k: v for k, v in states.items() if k not in ("sent", "uncertain")},
    }
