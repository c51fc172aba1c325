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


def crash_run(root: Path, *, notices_count: int, kills: int, seed: int = 1,
              kill_after: tuple[float, float] = (0.8, 3.0)) -> dict[str, Any]:
    from tests.conftest import write_config_file

    rng = random.Random(seed)
    modem = EmulatedModem(root / "modem")
    modem.scenario(status_reports=None)
    cfg_path = write_config_file(root / "gw.toml", {
        "paths": {"data_dir": str(root / "data")},
        "sms": {**FAST_SMS, "encoding": "ascii", "delivery_reports": False},
        "modem": modem.modem_section(),
    })
    engine = make_engine(load_config(cfg_path))
    with engine.begin() as conn:
        for i in range(notices_count):
            outbox.enqueue(conn, key=f"crash-{i}", phone="0912345678", kind="text", params={"text": f"Tin so {i:04d}"})
    cmd = [sys.executable, "-m", "sms_gateway.cli", "--config", str(cfg_path), "run"]
    log = open(root / "gateway.log", "ab")
    killed = 0
    started = time.monotonic()
    left = notices_count
    for _ in range(kills):
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        time.sleep(rng.uniform(*kill_after))
        os.kill(proc.pid, signal.SIGKILL)  # the gateway only; its modem sees EOF and exits by itself
        proc.wait()
        killed += 1
        with engine.connect() as conn:
            left = conn.execute(sa.select(sa.func.count()).where(
                notices.c.state.in_(("queued", "retry", "sending")))).scalar()
        if not left:
            break
    final = subprocess.run([*cmd, "--until-idle"], stdout=log, stderr=subprocess.STDOUT, timeout=900)
    elapsed = time.monotonic() - started
    with engine.connect() as conn:
        rows = conn.execute(sa.select(notices.c.params, notices.c.state)).all()
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
        "other_states": {k: v for k, v in states.items() if k not in ("sent", "uncertain")},
    }
