"""Two `sms-gateway run` processes on two emulated AT modems, one outbox (SQLite file and the real
PostgreSQL): a batch goes out once each, spread over both; SIGKILL one in the middle of a send (its
modem hangs on that send) and the other keeps sending, nothing goes out twice, and only the dead
gateway's notice becomes uncertain, once its heartbeat is stale. PDUs are counted on the emulators."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from motcua.config import load_config
from motcua.db import make_engine, reading
from sms_gateway.schema import notice_events
from tests.modem.hall import HallGateway, enqueue_batch, open_count, ready, tally, wait_until

# Each send costs 0.7 s inside Gammu whatever the modem does (docs/sms.md): 16 notices are ~8 sends per
# modem, and ~9 still queued when A dies, for B to go on with while A's heartbeat goes stale.
BATCH = 16
# Gateways and the test both stamp the same rows (heartbeats, claims): one clock.
pytestmark = pytest.mark.real_clock


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("pg_database")
    return f"sqlite:///{tmp_path / 'hall.db'}"


@pytest.fixture
def hall(tmp_path: Path, db_url: str):
    started: list[HallGateway] = []

    def _hall(*gateways: HallGateway) -> sa.Engine:
        engine = make_engine(load_config(gateways[0].config))
        engines.append(engine)
        for g in gateways:
            g.start()
            started.append(g)
        wait_until(lambda: ready(engine, list(gateways)),
                   lambda: "both gateways connected:\n" + "\n".join(g.log_tail() for g in gateways))
        return engine

    engines: list[sa.Engine] = []
    yield _hall
    for g in started:
        g.stop()
    for e in engines:
        e.dispose()


def test_a_batch_goes_out_once_each_spread_over_both_modems(tmp_path, db_url, hall):
    a, b = HallGateway(tmp_path, "kiosk-a", db_url), HallGateway(tmp_path, "kiosk-b", db_url)
    engine = hall(a, b)
    enqueue_batch(engine, BATCH)
    wait_until(lambda: open_count(engine) == 0, lambda: f"{open_count(engine)} notices still open")
    result = tally(engine, [a, b])
    print(result)
    assert result["states"] == {"sent": BATCH}
    assert result["twice"] == [] and result["sent_not_received"] == [] and result["received_by_other_than_holder"] == []
    assert sum(result["pdus"].values()) == BATCH  # each notice reached exactly one modem, once
    assert result["per_gateway"][a.name] > 0 and result["per_gateway"][b.name] > 0  # both modems sent


def test_killing_one_gateway_mid_send_leaves_the_other_sending_and_only_its_notice_uncertain(tmp_path, db_url, hall):
    # A's modem will hang on a send; A would wait 60 s for it, but is killed first. B judges a gateway
    # dead once its heartbeat is 5 s old (B's own sends time out after 2 s).
    a = HallGateway(tmp_path, "kiosk-a", db_url, sms={"holder_stale_s": 130}, modem={"send_timeout_s": 60})
    b = HallGateway(tmp_path, "kiosk-b", db_url, sms={"holder_stale_s": 5}, modem={"send_timeout_s": 2})
    engine = hall(a, b)
    enqueue_batch(engine, BATCH)
    wait_until(lambda: len(a.modem.raw_sent()) >= 2, lambda: f"A to send twice: {a.modem.raw_sent()}")
    a.modem.scenario(hang_sends=1)  # A's next send gets no answer
    wait_until(a.hung, lambda: "A's modem to hang on a send")
    a.kill()
    killed_at = time.time()
    wait_until(lambda: open_count(engine) == 0, lambda: f"{open_count(engine)} notices still open:\n{b.log_tail()}")
    result = tally(engine, [a, b])
    print(result)
    [held] = result["uncertain"]  # only the notice A was sending when it died
    assert held["holder"] == a.name and held["received"] == 0  # the hung send never reached the network
    assert result["states"] == {"sent": BATCH - 1, "uncertain": 1}
    assert result["twice"] == [] and result["sent_not_received"] == [] and result["received_by_other_than_holder"] == []
    assert sum(result["pdus"].values()) == BATCH - 1
    assert any(p["t"] > killed_at for p in b.modem.raw_sent())  # B went on sending after A died
    with reading(engine) as conn:
        event = conn.execute(sa.select(notice_events).where(notice_events.c.notice_id == held["id"])).one()
    assert event.actor == f"gateway {b.name}" and f"gateway {a.name} silent since" in event.detail
