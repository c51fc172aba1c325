"""Several gateways on one outbox, in process on SQLite and PostgreSQL: the claim takes each notice
once, a start recovers only its own notices, a silent gateway's notice becomes uncertain only once its
heartbeat is stale, and the old single heartbeat row migrates to the default gateway."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic import command

from motcua.db import _alembic_config, current_revisions, head_revisions, is_sqlite, make_engine
from motcua.timeutil import utcnow
from sms_gateway import outbox
from sms_gateway.health import count_parts, list_modem_health, parts_sent_on, write_modem_health
from sms_gateway.schema import notice_events, notices
from tests.conftest import CHEAP_HASHING

A, B = "kiosk-a/modem", "kiosk-b/modem"


def _enqueue(engine, n, prefix="n"):
    with engine.begin() as conn:
        return [outbox.enqueue(conn, key=f"{prefix}{i}", phone="0912345678", kind="text", params={"text": f"t{i}"})
                for i in range(n)]


def _claim_one(conn, holder):
    """What the gateway does: the oldest due row, read for claiming, then claimed under its name."""
    rows = outbox.due_to_claim(conn, utcnow(), limit=1)
    if not rows:
        return None
    assert outbox.claim(conn, rows[0].id, phone_e164="+84912345678", text="x", encoding="gsm7", parts=1,
                        holder=holder)
    return rows[0].id


def _states(engine):
    with engine.connect() as conn:
        return {r.id: (r.state, r.holder) for r in conn.execute(sa.select(notices.c.id, notices.c.state,
                                                                           notices.c.holder))}


def test_gateways_claiming_at_once_take_each_notice_exactly_once(any_engine):
    ids = _enqueue(any_engine, 60)
    taken: dict[str, list[int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def gateway(name):
        mine = taken.setdefault(name, [])
        start.wait()
        try:
            while True:
                with any_engine.begin() as conn:
                    got = _claim_one(conn, name)
                if got is None:
                    return
                mine.append(got)
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=gateway, args=(f"st{i}/modem",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    everything = [n for claimed in taken.values() for n in claimed]
    assert sorted(everything) == sorted(ids)  # each once, none left
    states = _states(any_engine)
    assert all(states[n] == ("sending", name) for name, claimed in taken.items() for n in claimed)


@pytest.mark.postgres
def test_postgresql_claim_skips_the_row_another_gateway_is_claiming(pg_database, make_config):
    engine = make_engine(make_config(database={"url": pg_database}))
    first, second = _enqueue(engine, 2)
    with engine.connect() as a, engine.connect() as b:
        a.begin()
        assert _claim_one(a, A) == first  # A's transaction is still open: the row stays locked
        b.begin()
        b.execute(sa.text("SET LOCAL lock_timeout = '5s'"))  # waiting on A's row would fail, not hang
        assert _claim_one(b, B) == second
        b.commit()
        a.commit()
    assert _states(engine) == {first: ("sending", A), second: ("sending", B)}
    engine.dispose()


def test_start_recovers_only_the_gateways_own_sending_notices(any_engine):
    a_notice, b_notice = _enqueue(any_engine, 2)
    with any_engine.begin() as conn:
        assert _claim_one(conn, A) == a_notice
        assert _claim_one(conn, B) == b_notice
        assert outbox.recover_interrupted(conn, A) == [a_notice]
    assert _states(any_engine) == {a_notice: ("uncertain", A), b_notice: ("sending", B)}


def test_notice_of_a_silent_gateway_becomes_uncertain_once_its_heartbeat_is_stale(any_engine):
    a_notice, b_notice, legacy = _enqueue(any_engine, 3)
    now = utcnow()
    with any_engine.begin() as conn:
        _claim_one(conn, A)
        _claim_one(conn, B)
        _claim_one(conn, A)
        # a notice claimed by software from before holders were recorded: nobody will ever finish it
        conn.execute(notices.update().where(notices.c.id == legacy).values(holder=None))
        write_modem_health(conn, A, state="ok", last_seen_at=now)
        write_modem_health(conn, B, state="ok", last_seen_at=now)
    with any_engine.begin() as conn:
        # B looks just before A's heartbeat is 60 s old: A may still be sending
        assert outbox.sweep_abandoned(conn, me=B, stale_s=60, now=now + timedelta(seconds=59)) == [legacy]
    assert _states(any_engine)[a_notice] == ("sending", A)
    with any_engine.begin() as conn:
        # and just after: A's notice is uncertain; B's own notice is never swept by B
        assert outbox.sweep_abandoned(conn, me=B, stale_s=60, now=now + timedelta(seconds=61)) == [a_notice]
        event = conn.execute(sa.select(notice_events).where(notice_events.c.notice_id == a_notice)).one()
    states = _states(any_engine)
    assert states[a_notice] == ("uncertain", A) and states[b_notice] == ("sending", B)
    assert states[legacy] == ("uncertain", None)
    assert event.actor == f"gateway {B}" and f"gateway {A} silent since" in event.detail
    # A comes back late with the outcome: it does not overwrite the decision
    with any_engine.begin() as conn:
        assert not outbox.mark_sent(conn, a_notice, [5], delivery_reports=False, holder=A)
        assert outbox.mark_sent(conn, b_notice, [6], delivery_reports=False, holder=B)
        assert not outbox.mark_sent(conn, b_notice, [6], delivery_reports=False, holder=A)
    assert _states(any_engine)[a_notice] == ("uncertain", A)


def test_parts_per_sim_are_counted_per_local_day(any_engine):
    today = utcnow().date()
    with any_engine.begin() as conn:
        count_parts(conn, A, today, 2)
        count_parts(conn, A, today, 1)
        count_parts(conn, B, today, 1)
        assert parts_sent_on(conn, A, today) == 3 and parts_sent_on(conn, B, today) == 1
        assert parts_sent_on(conn, A, today + timedelta(days=1)) == 0
        count_parts(conn, A, today + timedelta(days=1), 1)  # a new day starts again from zero
        assert parts_sent_on(conn, A, today + timedelta(days=1)) == 1
        assert [h["gateway"] for h in list_modem_health(conn)] == [A, B]


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_single_heartbeat_row_migrates_to_the_default_gateway(make_config, request, backend):
    cfg = make_config(database={"url": request.getfixturevalue("pg_database")}) if backend == "postgresql" \
        else make_config()
    engine = make_engine(cfg, migrate_now=False)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "s0002")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO modem_health (id, state, network, signal_percent, balance_low, "
                             "last_seen_at, updated_at) VALUES (1, 'ok', 'Viettel', 61, false, :t, :t)"),
                     {"t": "2026-11-30 01:02:03.000000" if is_sqlite(engine) else utcnow()})
    make_engine(cfg).dispose()  # the rest, as a start does
    assert current_revisions(engine) == head_revisions()
    with engine.connect() as conn:
        [row] = list_modem_health(conn)
    assert row["gateway"] == "main/modem" and row["network"] == "Viettel" and row["signal_percent"] == 61
    assert row["last_seen_at"].year == 2026 and row["sent_today"] == 0 and not row["capped"]
    engine.dispose()


def test_sim_at_its_daily_cap_waits_for_local_midnight(make_config, tmp_path):
    """[modem] daily_cap: 3 parts today, the rest tomorrow after 00:00 in the site's time zone."""
    import time_machine

    from sms_gateway.gateway import EXIT_IDLE, Gateway
    from sms_gateway.health import read_modem_health
    from tests.modem.harness import FAST_SMS, EmulatedModem

    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    modem = EmulatedModem(tmp_path / "modem")
    cfg = make_config(sms=FAST_SMS, modem=modem.modem_section(daily_cap=3))
    engine = make_engine(cfg)
    with time_machine.travel(datetime(2026, 12, 7, 23, 40, tzinfo=zone), tick=True):
        ids = _enqueue(engine, 5)  # one part each
        assert Gateway(cfg, engine).run(until_idle=True) == EXIT_IDLE
        assert len(modem.sent()) == 3
        with engine.connect() as conn:
            health = read_modem_health(conn)
        assert health["capped"] and health["sent_today"] == 3 and health["daily_cap"] == 3
        assert health["capped_until"] == datetime(2026, 12, 8, 0, 0, tzinfo=zone)
        assert Gateway(cfg, engine).run(until_idle=True) == EXIT_IDLE  # a restart does not lift the cap
        assert len(modem.sent()) == 3
    with time_machine.travel(datetime(2026, 12, 8, 0, 0, 5, tzinfo=zone), tick=True):
        assert Gateway(cfg, engine).run(until_idle=True) == EXIT_IDLE
        with engine.connect() as conn:
            health = read_modem_health(conn)
    assert len(modem.sent()) == 5 and {s for s, _h in _states(engine).values()} == {"sent"}
    assert not health["capped"] and health["sent_today"] == 2
    assert sorted(_states(engine)) == sorted(ids)
    engine.dispose()


@pytest.fixture
def staff_app(make_config):
    from kiosk.app import create_app

    cfg = make_config(staff=CHEAP_HASHING)
    engine = make_engine(cfg)
    yield create_app(cfg, engine, test_config={"TESTING": True}), engine
    engine.dispose()


def test_health_page_shows_every_modem_a_dead_gateway_and_a_sim_at_its_cap(staff_app):
    from kiosk.staff.testing import sign_in

    app, engine = staff_app
    now = utcnow()
    with engine.begin() as conn:
        write_modem_health(conn, A, state="ok", network="Viettel", signal_percent=70, last_seen_at=now,
                           daily_cap=200, capped_until=now + timedelta(hours=3))
        write_modem_health(conn, B, state="ok", network="MobiFone", signal_percent=60,
                           last_seen_at=now - timedelta(hours=1))
    client = sign_in(app)
    body = client.get("/staff/health").get_data(as_text=True)
    assert 'id="modem-kiosk-a/modem"' in body and 'id="modem-kiosk-b/modem"' in body
    assert "SIM đã gửi đủ 200 tin trong ngày" in body
    assert "bộ gửi tin không chạy" in body  # the silent gateway is shown, not hidden
    doc = client.get("/staff/health.json").get_json()
    modem = next(c for c in doc["checks"] if c["name"] == "modem")
    # neither modem sends now (one capped, one dead): the hall sends nothing, an error
    assert modem["state"] == "error" and modem["detail"].startswith("0 of 2 modems sending")
    assert [(m["gateway"], m["state"], m["capped"], m["gateway_running"]) for m in modem["data"]["modems"]] == [
        (A, "warning", True, True), (B, "error", False, False)]
    with engine.begin() as conn:  # A's new day: it sends again, the hall works on one modem
        write_modem_health(conn, A, capped_until=None, last_seen_at=utcnow())
    modem = next(c for c in client.get("/staff/health.json").get_json()["checks"] if c["name"] == "modem")
    assert modem["state"] == "warning" and modem["detail"].startswith("1 of 2 modems sending")


def test_two_modems_on_one_box_keep_their_gammu_files_apart(make_config):
    from sms_gateway.gateway import Gateway
    from sms_gateway.health import gateway_id

    first = make_config(station={"id": "quay-1"})
    second = make_config(station={"id": "quay-1"}, modem={"name": "modem-2"})
    engine = make_engine(first)
    one, two = Gateway(first, engine), Gateway(second, engine)
    assert (one.name, two.name) == (gateway_id(first), gateway_id(second)) == ("quay-1/modem", "quay-1/modem-2")
    assert one.modem.workdir.name == "sms-gateway" and two.modem.workdir.name == "sms-gateway-modem-2"
    engine.dispose()


def test_a_delivery_report_completes_only_a_notice_its_own_modem_sent(any_engine):
    """Message references are per modem: B's report for ref 7 is not A's notice with ref 7."""
    a_notice, b_notice = _enqueue(any_engine, 2)
    with any_engine.begin() as conn:
        _claim_one(conn, A)
        _claim_one(conn, B)
        outbox.mark_sent(conn, a_notice, [7], delivery_reports=True, holder=A)
        outbox.mark_sent(conn, b_notice, [7], delivery_reports=True, holder=B)
        # the newest pending notice with ref 7 for this number is B's; A's modem reports it
        assert outbox.record_delivery(conn, phone_e164="+84912345678", message_ref=7, delivered=True,
                                      holder=A) == a_notice
        assert outbox.record_delivery(conn, phone_e164="+84912345678", message_ref=7, delivered=False,
                                      holder=B) == b_notice
        rows = {r.id: r.delivery_status for r in conn.execute(sa.select(notices.c.id, notices.c.delivery_status))}
    assert rows == {a_notice: "delivered", b_notice: "failed"}
