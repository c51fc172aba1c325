"""Satisfaction ratings: the counter's citizen-facing screen, the staff report by day / month / counter
and its CSV (the push to the provincial system: tests/test_ratings_push.py)."""
from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from kiosk.queue import core as queue
from kiosk.ratings import core as ratings
from kiosk.ratings.schema import ratings as ratings_table
from kiosk.staff.testing import csrf_token, sign_in

NOON = datetime(2026, 11, 17, 5, 0, tzinfo=timezone.utc)  # 12:00 in Hanoi


def test_a_counter_screen_rating_is_recorded_for_that_counter_and_the_service_it_served(app, engine):
    cfg = app.config["MOTCUA"]
    counter = queue.list_counters(cfg)[0]
    service = queue.services_at_counter(cfg, counter)[0].code
    with engine.begin() as conn:
        queue.take_ticket(conn, cfg, service)
        queue.call_next(conn, cfg, counter)
    client = sign_in(app)
    page = client.get(f"/counter/{counter}/rate").get_data(as_text=True)
    assert 'id="rate-1"' in page and "Rất không hài lòng" in page
    token = csrf_token(client, f"/counter/{counter}/rate")
    low = client.post(f"/counter/{counter}/rate", data={"csrf_token": token, "score": "1"}).get_data(as_text=True)
    assert 'id="reasons-form"' in low
    done = client.post(f"/counter/{counter}/rate", data={"csrf_token": token, "score": "1", "final": "1",
                                                         "reason": ["attitude", "wait", "nonsense"]})
    assert 'id="rating-thanks"' in done.get_data(as_text=True)
    with engine.connect() as conn:
        row = conn.execute(sa.select(ratings_table)).mappings().one()
    assert (row["score"], row["reasons"], row["channel"], row["counter"], row["service_code"]) == (
        1, "attitude,wait", "counter", counter, service)
    assert client.get("/counter/NO-SUCH/rate").status_code == 404
    bad = client.post(f"/counter/{counter}/rate", data={"csrf_token": token, "score": "9"})
    assert bad.status_code == 400


def test_a_rating_from_outside_the_kiosk_screen_is_refused(app):
    resp = app.test_client().post("/rate", data={"score": "5"}, environ_base={"REMOTE_ADDR": "192.168.1.77"})
    assert resp.status_code == 403


def test_report_by_day_month_and_counter_and_its_csv(app, engine):
    cfg = app.config["MOTCUA"]
    with engine.begin() as conn:
        for i, (score, counter, reasons) in enumerate([(5, "1", []), (4, "1", []), (2, "2", ["wait"]),
                                                       (1, None, ["wait", "guidance"])]):
            ratings.record(conn, cfg, score, reasons, channel="counter" if counter else "kiosk", counter=counter,
                           now=NOON + timedelta(days=i % 2))
        with pytest.raises(ratings.InvalidRating):
            ratings.record(conn, cfg, 0, channel="kiosk")
    with engine.connect() as conn:
        by_counter = {g["key"]: g for g in ratings.report(conn, "counter", date(2026, 11, 1), date(2026, 11, 30))}
        by_day = ratings.report(conn, "day", date(2026, 11, 17), date(2026, 11, 17))
    assert by_counter["1"]["mean"] == 4.5 and by_counter["1"]["satisfied_pct"] == 100.0
    assert by_counter["kiosk"]["reasons"]["guidance"] == 1 and by_counter["2"]["reasons"]["wait"] == 1
    assert [(g["key"], g["count"]) for g in by_day] == [("2026-11-17", 2)]
    client = sign_in(app)
    page = client.get("/staff/ratings?by=month&from=2026-11-01&to=2026-11-30").get_data(as_text=True)
    assert 'id="rating-2026-11"' in page
    resp = client.get("/staff/ratings.csv?by=counter&from=2026-11-01&to=2026-11-30")
    assert resp.mimetype == "text/csv"
    table = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert {r["counter"]: r["count"] for r in table} == {"1": "2", "2": "1", "kiosk": "1"}


def test_the_counter_page_brings_up_the_rating_screen_for_the_citizen_just_served(app, engine):
    cfg = app.config["MOTCUA"]
    counter = queue.list_counters(cfg)[0]
    service = queue.services_at_counter(cfg, counter)[0].code
    client = sign_in(app)
    assert 'id="btn-rate"' not in client.get(f"/counter/{counter}").get_data(as_text=True)  # nobody served yet
    with engine.begin() as conn:
        ticket = queue.take_ticket(conn, cfg, service)
    token = csrf_token(client, f"/counter/{counter}")
    for action in ("next", "finish"):
        client.post(f"/counter/{counter}/{action}", data={"csrf_token": token})
    page = client.get(f"/counter/{counter}").get_data(as_text=True)
    link = re.search(r'<a class="btn" id="btn-rate" href="([^"]+)" target="([^"]+)"', page)
    assert link and link.group(1) == f"/counter/{counter}/rate" and link.group(2) == f"rate-{counter}"
    assert f"Đánh giá sẽ ghi cho số {ticket.label}" in page
    faces = client.get(link.group(1)).get_data(as_text=True)
    assert 'id="rate-5"' in faces
    client.post(link.group(1), data={"csrf_token": csrf_token(client, link.group(1)), "score": "5"})
    with engine.connect() as conn:
        row = conn.execute(sa.select(ratings_table)).mappings().one()
    assert (row["channel"], row["counter"], row["service_code"], row["score"]) == ("counter", counter, service, 5)
