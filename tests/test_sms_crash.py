"""SIGKILL the gateway at random moments while it sends; restart it each time. No notice is lost,
none is sent twice; only the ones the gateway itself recorded as uncertain may have gone out
without being recorded as sent. (bench/bench_sms.py runs the same with 300 notices.)"""
from __future__ import annotations

import os

import pytest

from tests.modem.crash import crash_run


@pytest.mark.real_clock  # the test enqueues, the gateway processes it starts send: one clock for both
def test_sigkill_at_random_moments_loses_nothing_and_doubles_nothing(tmp_path):
    n = int(os.environ.get("SMS_CRASH_NOTICES", "40"))
    # Longer lives for a longer run, so that the kills spread over all of it (a life costs ~1.5 s of
    # start-up before its first send; Gammu then spends 0.7 s in each send).
    kill_after = (0.8, 3.0) if n <= 40 else (1.0, 10.0)
    kills = int(os.environ.get("SMS_CRASH_KILLS", "8" if n <= 40 else str(n // 5)))
    result = crash_run(tmp_path, notices_count=n, kills=kills, seed=7, kill_after=kill_after)
    print(result)
    assert result["final_exit"] == 0
    assert result["kills"] >= 3
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert result["other_states"] == {}
    assert result["sent"] + result["uncertain"] == n
    # every message the modem took is either recorded sent or flagged uncertain
    assert result["modem_received"] == result["sent"] + result["uncertain_that_went_out"]
