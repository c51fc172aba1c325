"""SIGKILL the gateway at random moments while it sends; restart it each time. No notice is lost,
none is sent twice; only the ones the gateway itself recorded as uncertain may have gone out
without being recorded as sent. With delivery reports (kept in the modem's memory by the emulated
network), uncertain notices settle themselves: marked sent by their report, or sent again once when
no report came while later ones did. (bench/bench_sms.py runs the same with 300 notices.)

SMS_CRASH_NOTICES / SMS_CRASH_KILLS size the run; SMS_CRASH_REPORTS=0 runs without delivery
reports (the issue-15 baseline's setting)."""
from __future__ import annotations

import os

import pytest

from tests.modem.crash import crash_run

SCHEDULES = {
    # kills at random moments after each start
    "after_start": dict(kill_after=(0.8, 3.0), after_ready=False),
    # kills 0.2-3 s after each "modem ready": every life is cut around its first sends
    "after_modem_ready": dict(kill_after=(0.2, 3.0), after_ready=True),
}


@pytest.mark.real_clock  # the test enqueues, the gateway processes it starts send: one clock for both
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_sigkill_at_random_moments_loses_nothing_and_doubles_nothing(tmp_path, schedule):
    # 16 notices, 6 kills: a life is ~1.5 s of start-up, then 0.7 s per send inside Gammu; measured, 3-6
    # of the 6 kills cut a send (that notice uncertain, then settled), the others the start-up, and
    # ~10 notices are left for the clean run at the end, which more notices only lengthen (0.7 s
    # each). SMS_CRASH_NOTICES=40 runs the former 40 notices / 8 kills.
    n = int(os.environ.get("SMS_CRASH_NOTICES", "16"))
    reports = os.environ.get("SMS_CRASH_REPORTS", "1") != "0"
    kw = dict(SCHEDULES[schedule])
    if n > 40 and schedule == "after_start":
        # Longer lives for a longer run, so that the kills spread over all of it (a life costs ~1.5 s
        # of start-up before its first send; Gammu then spends 0.7 s in each send).
        kw["kill_after"] = (1.0, 10.0)
    kills = int(os.environ.get("SMS_CRASH_KILLS", str(max(6, n // 5))))
    result = crash_run(tmp_path, notices_count=n, kills=kills, seed=7, reports=reports, distinct_numbers=True, **kw)
    print(schedule, result)
    assert result["final_exit"] == 0
    assert result["kills"] >= 3
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert result["other_states"] == {}
    assert result["sent"] + result["uncertain"] == n
    # every message the modem took is either recorded sent or flagged uncertain
    assert result["modem_received"] == result["sent"] + result["uncertain_that_went_out"]
    if reports:
        # Every message the network took left its report in the modem, one number per notice: each
        # such uncertain notice was marked sent by it. Those that never went out are sent again once,
        # unless too few later messages were reported to tell silence from a stopped network (a kill
        # near the end of the run); those stay for an official.
        assert result["uncertain_that_went_out"] == 0
        assert result["uncertain"] <= result["kills"] - result["resent_automatically"] - result["resolved_by_report"]
