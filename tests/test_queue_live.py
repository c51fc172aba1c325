"""The queue under real gunicorn: 50 simultaneous "take a number" requests from 3 workers, and the
counter page driving the hall display in real headless Chromium (with the spoken announcement)."""
from __future__ import annotations

import importlib.util
import json
import secrets
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa

from kiosk.printing.schema import print_jobs
from kiosk.queue import core
from motcua.config import load_config
from motcua.db import make_engine
from tests.conftest import ARTIFACTS, CHEAP_HASHING, CHROMIUM, CHROMIUM_ARGS

STAFF = importlib.util.find_spec("kiosk.staff") is not None


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_fifty_simultaneous_tickets_from_three_workers_are_distinct_and_consecutive(
        request, live_server, tmp_path, backend):
    data_dir = tmp_path / "hall"
    # Fifty at once from the kiosk's address: past the station's ticket limit (tested in test_hostile_hall).
    sections: dict[str, Any] = {"paths": {"data_dir": str(data_dir)},
                                "kiosk": {"station_ticket_rate": "1000 per minute"}}
    if backend == "postgresql":
        sections["database"] = {"url": request.getfixturevalue("pg_database")}
    base = live_server(sections, workers=3)
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda _: _post(f"{base}/queue/tickets", {"service": "A"}), range(50)))
    assert [status for status, _ in results] == [201] * 50
    numbers = sorted(body["ticket"]["number"] for _, body in results)
    assert numbers == list(range(1, 51))
    assert sorted(body["ticket"]["label"] for _, body in results) == [f"A{n:03d}" for n in range(1, 51)]
    job_ids = {body["print_job"] for _, body in results}
    assert len(job_ids) == 50
    cfg = load_config(None, {**sections, "paths": {"data_dir": str(data_dir)}})
    engine = make_engine(cfg)
    with engine.connect() as conn:
        jobs = conn.execute(sa.select(print_jobs.c.ref).where(print_jobs.c.kind == "ticket")).scalars().all()
    engine.dispose()
    assert sorted(jobs) == [f"A{n:03d}" for n in range(1, 51)]
    # bad requests get a clear answer, not a stack trace
    assert _post(f"{base}/queue/tickets", {"service": "ZZZ"})[0] == 404
    status, body = _post(f"{base}/queue/tickets", {})
    assert status == 400 and body["message_vi"]


@pytest.fixture(scope="module")
def sound_browser(browser):
    """Chromium allowed to play sound without a tap, as the hall display is launched
    (`--autoplay-policy=no-user-gesture-required`, see docs/queue.md). Launched through the session's
    Playwright (a second sync Playwright in the same thread is refused)."""
    b = browser.browser_type.launch(executable_path=CHROMIUM, headless=True,
                                    args=CHROMIUM_ARGS + ["--autoplay-policy=no-user-gesture-required"])
    yield b
    b.close()


def _open_counter(browser, base: str, cfg, engine, counter: str):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="vi-VN")
    page = context.new_page()
    page.goto(f"{base}/counter/{counter}")
    if STAFF and "/staff/login" in page.url:
        from kiosk.staff import users

        name, password = f"canbo{secrets.token_hex(2)}", secrets.token_urlsafe(12)
        with engine.begin() as conn:
            users.create_user(conn, cfg.staff, name, password, role=users.OFFICIAL, display_name="Cán bộ")
        page.fill("#username", name)
        page.fill("#password", password)
        page.click("form[action$='/staff/login'] button[type=submit]")
        page.wait_for_load_state()
        if f"/counter/{counter}" not in page.url:
            raise AssertionError(page.url + page.inner_text("body"))
    return context, page


def test_counter_page_calls_and_hall_display_shows_and_announces(live_server, sound_browser, tmp_path):
    data_dir = tmp_path / "hall"
    # The browser here is a counter PC on the LAN, not the kiosk screen (whose staff pages are refused).
    # Cheap password hashing (two sign-ins) and the fastest speech espeak-ng allows: the test waits for
    # the announcement to play to its end, not for what it says.
    sections = {"paths": {"data_dir": str(data_dir)}, "kiosk": {"kiosk_addresses": ["192.0.2.10"]},
                "queue": {"display_poll_ms": 300, "espeak_speed": 300},
                "staff": CHEAP_HASHING}
    base = live_server(sections)
    cfg = load_config(None, sections)
    engine = make_engine(cfg)
    with engine.begin() as conn:
        a1 = core.take_ticket(conn, cfg, "HT")
        b1 = core.take_ticket(conn, cfg, "DD")
        a2 = core.take_ticket(conn, cfg, "HT")

    display_ctx = sound_browser.new_context(viewport={"width": 1920, "height": 1080})
    display = display_ctx.new_page()
    errors: list[str] = []
    # (resource failures are checked by URL below: the browser's own /favicon.ico probe may 404)
    display.on("console", lambda m: errors.append(m.text)
               if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
    failed: list[str] = []
    display.on("response", lambda r: failed.append(r.url) if r.status >= 400 and "favicon" not in r.url else None)
    display.on("pageerror", lambda e: errors.append(str(e)))
    audio: list[tuple[str, int, str]] = []
    display.on("response", lambda r: audio.append((r.url, r.status, r.headers.get("content-type", "")))
               if ".wav" in r.url else None)
    display.goto(f"{base}/display")
    display.wait_for_selector("#display[data-ready='1']")
    assert display.locator(".column").count() == 3
    assert "Hộ tịch - Chứng thực" in display.inner_text(".column[data-service='HT'] h2")

    counter_ctx, counter = _open_counter(sound_browser, base, cfg, engine, "1")
    counter.click("#btn-next")
    counter.wait_for_load_state()
    assert counter.inner_text("#current-label") == a1.label
    assert f"Đã gọi số {a1.label}" in counter.inner_text(".flash")

    latest = ".column[data-service='HT'] .call-latest"
    display.wait_for_function(
        "sel => { const e = document.querySelector(sel); return e && e.textContent.includes('A001'); }",
        arg=latest, timeout=10_000)
    assert display.inner_text(f"{latest} .call-label") == a1.label
    assert display.inner_text(f"{latest} .call-counter") == "1"
    display.wait_for_function("() => document.getElementById('display').dataset.audio === 'played'",
                              timeout=15_000)
    announced = display.get_attribute("#display", "data-announced")
    assert announced and len(announced.split(",")) == 1
    assert any(url.endswith("/display/chime.wav") and st == 200 and "audio/wav" in ct for url, st, ct in audio)
    assert any("/display/announce/" in url and st == 200 and "audio/wav" in ct for url, st, ct in audio)

    # recall: announced again; transfer to land; the land counter then calls it before B001
    counter.click("#btn-recall")
    counter.wait_for_load_state()
    display.wait_for_function("() => document.getElementById('display').dataset.announced.split(',').length === 2",
                              timeout=10_000)
    counter.select_option("#transfer-service", "DD")
    counter.click("#btn-transfer")
    counter.wait_for_load_state()
    assert "Đã chuyển số A001 sang Đất đai" in counter.inner_text(".flash")
    assert counter.inner_text("#current-label") == "—"
    land_ctx, land = _open_counter(sound_browser, base, cfg, engine, "3")
    land.click("#btn-next")
    land.wait_for_load_state()
    assert land.inner_text("#current-label") == a1.label
    land.click("#btn-skip")
    land.wait_for_load_state()
    assert "Đã bỏ qua số A001" in land.inner_text(".flash")
    land.click("#btn-next")
    land.wait_for_load_state()
    assert land.inner_text("#current-label") == b1.label
    display.wait_for_function(
        "() => document.querySelector(\".column[data-service='DD'] .call-latest .call-label\").textContent === 'B001'",
        timeout=10_000)
    assert display.inner_text(".column[data-service='DD'] .call-latest .call-counter") == "3"
    assert display.inner_text(".column[data-service='HT'] .waiting-count") == "1"  # A002 still waiting
    ARTIFACTS.mkdir(exist_ok=True)
    display.screenshot(path=str(ARTIFACTS / "queue-display.png"))
    counter.screenshot(path=str(ARTIFACTS / "queue-counter.png"))
    assert errors == [] and failed == []
    assert a2.label == "A002"
    for ctx in (display_ctx, counter_ctx, land_ctx):
        ctx.close()
    engine.dispose()


def test_unknown_counter_is_a_plain_page_and_display_filters_services(client, app):
    if STAFF:
        from kiosk.staff.testing import sign_in

        client = sign_in(app)
    resp = client.get("/counter/99")
    assert resp.status_code == 404 and "Không tìm thấy" in resp.get_data(as_text=True)
    page = client.get("/display?services=DD,C").get_data(as_text=True)
    assert "Đất đai" in page and "Lao động" in page and "Hộ tịch" not in page
    assert client.get("/display?services=XX").status_code == 404
    assert client.get("/display/announce/12345.wav").status_code == 404


def test_taking_a_number_is_for_the_kiosk_screens_only(make_config):
    from kiosk.app import create_app

    cfg = make_config(kiosk={"kiosk_addresses": ["127.0.0.1"]})
    app = create_app(cfg, make_engine(cfg), test_config={"TESTING": True})
    lan = app.test_client()
    lan.environ_base["REMOTE_ADDR"] = "192.168.1.50"
    assert lan.post("/queue/tickets", json={"service": "HT"}).status_code == 403
    resp = app.test_client().post("/queue/tickets", json={"service": "HT", "print": False})
    assert resp.status_code == 201 and resp.json["print_job"] is None and resp.json["ticket"]["label"] == "A001"
    state = app.test_client().get("/printer/state").json
    assert state["state"] == "unknown" and state["pending_jobs"] == 0
