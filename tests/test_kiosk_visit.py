"""The citizen's visit in real headless Chromium against real gunicorn (issue 14): a code in a few taps,
input never lost, messages that match what the citizen did, at the three kiosk sizes."""
from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, Iterator

import pytest
from conftest import ARTIFACTS
from kiosk_support import audit_and_shoot, sample_dossiers, serve, today_vn

from kiosk.scanner.channel import EventServer

PREFIX = "000.00.21.H42"
CODE_A = "000.00.21.H42-251125-0001"  # processing, secret ABC234 (kiosk_support.sample_dossiers)
CODE_DOCS = "000.00.21.H42-251110-0004"  # more documents needed


def _today_code(seq: str, days_ago: int = 0) -> str:
    return f"{PREFIX}-{(today_vn() - timedelta(days=days_ago)):%y%m%d}-{seq}"


def visit_dossiers() -> list[dict[str, Any]]:
    """The sample dossiers plus some received in the last days: 0008 today, 0003 on two days."""
    t = today_vn()
    extra = [(_today_code("0008"), "processing"), (_today_code("0003", 1), "processing"),
             (_today_code("0003", 2), "waiting")]
    return sample_dossiers() + [
        {"code": code, "secret": "SEQ123", "procedure": "Chứng thực bản sao", "field": "Chứng thực",
         "applicant_name": "Đỗ Văn Nam", "phone": None, "status": status,
         "appointment_date": (t + timedelta(days=3)).isoformat()} for code, status in extra]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("kiosk-visit")
    for srv in serve(root, {"kiosk": {"threads": 32, "idle_timeout_s": 45}}):
        srv.ingest(visit_dossiers())
        yield srv


@pytest.fixture(scope="module")
def scanner(server: Any) -> Iterator[EventServer]:
    events = EventServer(server.socket_path).start()
    events.publish("camera", {"state": "ok", "detail": "test camera"})
    yield events
    events.close()


class Taps:
    """Counts the citizen's taps (each one a click on the page)."""

    def __init__(self, page: Any) -> None:
        self.page, self.n = page, 0

    def __call__(self, selector: str) -> None:
        self.page.click(selector)
        self.n += 1

    def keys(self, text: str, keypad: str = "#digit-keys") -> None:
        for ch in text:
            self(f'{keypad} .key[data-key="{ch}"]')


def test_typical_code_takes_twelve_taps_from_home_typed_as_date_and_sequence(page, server, scanner):
    page.goto(server.url + "/")
    tap = Taps(page)
    tap("#go-code")
    page.wait_for_selector("#digit-keys")
    assert page.inner_text("#code-prefix").strip() == f"{PREFIX}-"  # the commune's prefix, learnt from its dossiers
    tap.keys(_today_code("0008").split("-", 1)[1].replace("-", ""))
    assert page.input_value("#f-code") == _today_code("0008").split("-", 1)[1]  # grouped as on the receipt
    audit_and_shoot(page, "visit-code-digits")
    tap("#submit-digits")
    page.wait_for_selector("#status")
    assert page.inner_text("#dossier-code") == _today_code("0008")
    assert tap.n <= 12, tap.n


def test_sequence_alone_finds_todays_dossier_and_an_ambiguous_one_reveals_nothing(page, server, scanner):
    page.goto(server.url + "/code")
    tap = Taps(page)
    tap.keys("8")
    tap("#submit-digits")
    page.wait_for_selector("#status")
    assert page.inner_text("#dossier-code") == _today_code("0008")

    texts = []
    for seq in ("3", "77"):  # 0003: two recent dossiers; 0077: none. The citizen cannot tell the two apart.
        page.goto(server.url + "/code")
        Taps(page).keys(seq)
        page.click("#submit-digits")
        page.wait_for_selector("#not-found")
        texts.append(page.inner_text("#not-found").replace(seq, "#"))
        assert _today_code("0003", 1) not in page.content() and "Đỗ" not in page.content()
    assert texts[0] == texts[1]
    audit_and_shoot(page, "visit-not-found-short")


def test_not_found_keeps_the_typed_digits_for_a_one_tap_correction(page, server, scanner):
    page.goto(server.url + "/code")
    Taps(page).keys("2511250002")
    page.click("#submit-digits")
    page.wait_for_selector("#not-found")
    assert "251125-0002" in page.inner_text("#code-echo")
    page.click("#retype")
    page.wait_for_selector("#digit-keys")
    assert page.input_value("#f-code") == "251125-0002"
    page.click('#digit-keys .key[data-key="back"]')  # one wrong digit: one tap to remove it
    Taps(page).keys("1")
    assert page.input_value("#f-code") == "251125-0001"
    page.click("#submit-digits")
    page.wait_for_selector("#status")
    assert page.inner_text("#dossier-code") == CODE_A


def test_full_code_typed_without_dots_is_found_and_the_secret_is_kept(page, server, scanner):
    page.goto(server.url + "/code")
    page.click("#mode-full")
    page.wait_for_selector("#keypad")
    Taps(page).keys("0000021H422511250001", keypad="#keypad")
    page.click('.field[data-field="secret"]')
    Taps(page).keys("ABC234", keypad="#keypad")
    audit_and_shoot(page, "visit-code-full")
    page.click("#submit-code")
    page.wait_for_selector("#status")
    assert page.inner_text("#dossier-code") == CODE_A
    assert page.inner_text("#applicant") == "N***** V** Hùng"


def test_switching_to_the_full_keypad_keeps_the_digits_with_the_prefix(page, server, scanner):
    page.goto(server.url + "/code")
    Taps(page).keys("251125")
    page.click("#mode-full")
    assert page.input_value("#f-code") == f"{PREFIX}-251125"
    Taps(page).keys("-0001", keypad="#keypad")
    page.click("#submit-code")
    page.wait_for_selector("#status")
    assert page.inner_text("#dossier-code") == CODE_A


def test_a_too_short_typed_code_says_it_was_typed_not_scanned_and_keeps_it(page, server, scanner):
    page.goto(server.url + "/code")
    page.click("#mode-full")
    Taps(page).keys("H42", keypad="#keypad")
    page.click("#submit-code")
    page.wait_for_selector("#unreadable")
    text = page.inner_text("main")
    assert "vừa nhập" in text and "quét" not in text.lower()
    assert page.locator("text=Quét lại").count() == 0
    audit_and_shoot(page, "visit-typed-wrong")
    page.click("#retype")
    page.wait_for_selector("#keypad")
    assert page.input_value("#f-code") == "H42"


# --- a scan never throws typed input away -----------------------------------------------------

def _scan_event(scanner: EventServer, code: str, secret: str) -> None:
    scanner.publish("scan", {"code": code, "secret": secret, "kind": "url", "decoded_at": time.time()})


def _wait_for_events(page: Any, scanner: EventServer) -> None:
    """The scanner's state reaches every new stream first: after it, a scan reaches this page."""
    page.wait_for_selector("body[data-stream=live]", state="attached", timeout=10_000)


@pytest.mark.parametrize("size", [(800, 480), (1280, 800), (1080, 1920)])
def test_camera_scan_while_typing_a_code_asks_first_and_keeps_the_typed_digits(page, server, scanner, size):
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.goto(server.url + "/code")
    _wait_for_events(page, scanner)
    Taps(page).keys("25112")
    _scan_event(scanner, CODE_DOCS, "DOC777")
    page.wait_for_selector("#scan-ask:not([hidden])")
    assert page.inner_text("#scan-ask-code") == CODE_DOCS
    assert page.input_value("#f-code") == "25112"
    for sel in ("#scan-open", "#scan-keep"):
        box = page.locator(sel).bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= size[1] and box["x"] + box["width"] <= size[0]
    page.click("#scan-keep")
    assert page.locator("#scan-ask").is_hidden()
    Taps(page).keys("50001")
    assert page.input_value("#f-code") == "251125-0001"  # typing goes on where it stopped
    _scan_event(scanner, CODE_DOCS, "DOC777")
    page.wait_for_selector("#scan-ask:not([hidden])")
    page.click("#scan-open")
    page.wait_for_selector("#status")
    assert page.inner_text("#dossier-code") == CODE_DOCS


def test_camera_scan_on_an_empty_keypad_opens_the_dossier_at_once(page, server, scanner):
    page.goto(server.url + "/code")
    _wait_for_events(page, scanner)
    _scan_event(scanner, CODE_DOCS, "DOC777")
    page.wait_for_selector("#status")
    assert page.inner_text("#dossier-code") == CODE_DOCS


def _phone_page_with_digits_typed(page: Any, server: Any, digits: str) -> None:
    """A citizen scans a receipt with the USB scanner, asks for SMS and taps `digits` of their number."""
    page.goto(server.url + "/")
    page.keyboard.type(f"D-DOC777-{CODE_DOCS}", delay=0)
    page.keyboard.press("Enter")
    page.wait_for_selector("#ask-sms")
    page.click("#ask-sms")
    page.wait_for_selector("#f-phone")
    for d in digits:
        page.click(f'#keypad .key[data-key="{d}"]')


def test_usb_scanner_burst_while_typing_a_phone_number_asks_first(page, server, scanner):
    _phone_page_with_digits_typed(page, server, "0912")
    page.keyboard.type(f"D-ABC234-{CODE_A}", delay=0)  # someone scans a receipt with the USB scanner
    page.keyboard.press("Enter")
    page.wait_for_selector("#scan-ask:not([hidden])")
    assert page.input_value("#f-phone") == "0912"
    page.click("#scan-keep")
    assert page.input_value("#f-phone") == "0912" and page.url.endswith("/sms")


# --- one tap, one slip ------------------------------------------------------------------------

def _slip_jobs(server: Any, code: str) -> int:
    import sqlalchemy as sa

    eng = server.engine()
    try:
        with eng.connect() as conn:
            return int(conn.execute(sa.text("select count(*) from print_jobs where kind = 'slip' and ref = :c"),
                                    {"c": code}).scalar())
    finally:
        eng.dispose()


def test_a_double_tap_on_print_makes_one_slip_and_the_confirmation_offers_no_second(page, server, scanner):
    code = _today_code("0008")
    before = _slip_jobs(server, code)
    page.goto(server.url + "/code")
    Taps(page).keys("8")
    page.click("#submit-digits")
    page.wait_for_selector("#print-slip")
    page.dblclick("#print-slip", delay=100)
    page.wait_for_selector("#notice")
    assert "Đang in phiếu" in page.inner_text("#notice")
    assert page.locator("#print-slip").count() == 0  # the confirmation has nothing that prints again
    assert _slip_jobs(server, code) == before + 1


def test_repeated_posts_of_one_page_make_one_slip_even_when_they_race(server):
    import concurrent.futures
    import re
    import urllib.parse
    import urllib.request

    code = _today_code("0003", 2)
    with urllib.request.urlopen(urllib.request.Request(
            server.url + "/lookup", data=urllib.parse.urlencode({"code": code, "source": "camera"}).encode()),
            timeout=10) as resp:
        key = re.search(r'name="request_key" value="([0-9a-f]{32})"', resp.read().decode()).group(1)
    before = _slip_jobs(server, code)

    def post(_: int) -> int:
        body = urllib.parse.urlencode({"code": code, "request_key": key}).encode()
        with urllib.request.urlopen(urllib.request.Request(server.url + "/slip", data=body), timeout=10) as r:
            return r.status

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert list(pool.map(post, range(4))) == [200] * 4
    assert _slip_jobs(server, code) == before + 1


# --- the hall display -------------------------------------------------------------------------

def _call_some_tickets(server: Any) -> None:
    from kiosk.queue import core
    from motcua.config import load_config

    cfg = load_config(server.config_path)
    eng = server.engine()
    try:
        with eng.begin() as conn:
            for svc in core.list_services(cfg):
                for _ in range(3):
                    core.take_ticket(conn, cfg, svc.code)
            for counter in core.list_counters(cfg):
                core.call_next(conn, cfg, counter)
    finally:
        eng.dispose()


CALL_BOXES_JS = r"""
() => [...document.querySelectorAll('.call')].map(li => {
  const box = el => { const r = el.getBoundingClientRect(); return [r.left, r.right]; };
  return {label: box(li.querySelector('.call-label')), counter: box(li.querySelector('.call-counter')),
          column: box(li.closest('.column')), text: li.textContent}; })
"""
CLOCK_JS = "() => document.getElementById('clock').textContent"
SMALL_TEXT_JS = r"""
() => [...document.querySelectorAll('body *')].filter(el => {
  const st = getComputedStyle(el), r = el.getBoundingClientRect();
  return r.width > 0 && st.display !== 'none' && [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())
    && parseFloat(st.fontSize) < 18; }).map(el => el.className + ' ' + getComputedStyle(el).fontSize)
"""


def test_hall_display_fits_portrait_keeps_number_and_counter_apart_and_shows_site_time(browser, server):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    _call_some_tickets(server)
    # The display's browser is in another time zone than the hall: the clock must not follow it.
    ctx = browser.new_context(viewport={"width": 1080, "height": 1920}, timezone_id="America/New_York")
    try:
        page = ctx.new_page()
        page.goto(server.url + "/display")
        page.wait_for_function("() => document.getElementById('clock').textContent.length > 0")
        site_now = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh"))
        shown = page.evaluate(CLOCK_JS)
        later = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh"))
        assert shown in {f"{t:%H:%M}  {t:%d/%m/%Y}" for t in (site_now, later)}, shown
        for w, h in ((1080, 1920), (1920, 1080), (800, 480)):
            page.set_viewport_size({"width": w, "height": h})
            assert page.evaluate("document.documentElement.scrollWidth") <= w
            # all boxes at once: the display redraws its lists on every poll
            calls = page.evaluate(CALL_BOXES_JS)
            assert len(calls) >= 3
            for c in calls:
                assert c["label"][0] >= c["column"][0] and c["counter"][1] <= c["column"][1], (w, h, c)
                assert c["counter"][0] - c["label"][1] >= 10, f"{w}x{h}: number and counter run together {c}"
            page.screenshot(path=str(ARTIFACTS / f"screens/visit-display-{w}x{h}.png"))
            assert page.evaluate(SMALL_TEXT_JS) == [], f"{w}x{h}: text under 18 px"
    finally:
        ctx.close()


# --- layout at the Pi's 800x480 ---------------------------------------------------------------

def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


def test_status_at_800x480_shows_the_opening_hours_and_a_wrong_secret_overlaps_nothing(page, server, scanner):
    page.goto(server.url + "/code")
    page.click("#mode-full")
    Taps(page).keys(CODE_A, keypad="#keypad")
    page.click('.field[data-field="secret"]')
    Taps(page).keys("WRONG9", keypad="#keypad")
    page.click("#submit-code")
    page.wait_for_selector("#secret-wrong")
    audit_and_shoot(page, "visit-status-secret-wrong")
    for w, h in ((800, 480), (1280, 800), (1080, 1920)):
        page.set_viewport_size({"width": w, "height": h})
        hours = page.locator("#hours-line")
        assert hours.is_visible(), f"{w}x{h}: no opening hours"
        warn = page.locator("#secret-wrong").bounding_box()
        for i in range(page.locator(".row.buttons .btn").count()):
            assert not _overlap(warn, page.locator(".row.buttons .btn").nth(i).bounding_box()), f"{w}x{h}"
        assert not _overlap(hours.bounding_box(), page.locator(".row.buttons").bounding_box()), f"{w}x{h}"


def test_phone_error_keeps_every_button_on_the_800x480_screen(page, server, scanner):
    _phone_page_with_digits_typed(page, server, "0912")
    page.click("#consent-yes")
    page.wait_for_selector("#phone-error")
    audit_and_shoot(page, "visit-phone-error")


# --- office closed ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def closed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Open only from 13:30 to 17:00, three days from today (site time)."""
    other_day = (today_vn().weekday() + 3) % 7
    root = tmp_path_factory.mktemp("kiosk-visit-closed")
    for srv in serve(root, {"kiosk": {"threads": 16}},
                     [{"days": [other_day], "open": "13:30:00", "close": "17:00:00"}]):
        srv.ingest(visit_dossiers())
        yield srv


def test_office_closed_says_when_it_opens_again_and_lookups_still_scan(page, closed_server):
    opens = today_vn() + timedelta(days=3)
    page.goto(closed_server.url + "/")
    page.wait_for_selector("#closed")
    text = page.inner_text("#opens-again")
    assert "13:30" in text and f"{opens:%d/%m}" in text, text
    audit_and_shoot(page, "visit-closed")
    page.click("#go-scan")
    page.wait_for_selector("#viewer, #camera-unavailable", state="attached")
    assert page.url.endswith("/scan")


def test_more_documents_past_its_date_shows_no_overdue_badge(page, server, scanner):
    from kiosk.store import dossiers

    assert not dossiers.is_overdue("more_documents", today_vn() - timedelta(days=5), today_vn())
    server.ingest([{"code": _today_code("0044", 20), "secret": "DOC444", "procedure": "Chứng thực bản sao",
                    "status": "more_documents", "appointment_date": (today_vn() - timedelta(days=5)).isoformat()}])
    page.goto(server.url + "/")
    page.keyboard.type(f"D-DOC444-{_today_code('0044', 20)}", delay=0)
    page.keyboard.press("Enter")
    page.wait_for_selector("#status")
    assert page.locator("#overdue").count() == 0
    assert "tone-bad" not in page.get_attribute("#status", "class")
    assert "quá hạn" not in page.inner_text("main").lower()


# --- priority queue, end to end ---------------------------------------------------------------

def test_a_priority_ticket_is_printed_as_such_called_first_and_marked_on_the_display(page, browser, server, scanner):
    import json

    import sqlalchemy as sa

    from kiosk.queue import core
    from motcua.config import load_config

    cfg = load_config(server.config_path)
    page.goto(server.url + "/ticket")
    page.click("#go-priority")
    page.wait_for_selector("#priority-on")
    audit_and_shoot(page, "visit-services-priority")
    page.locator("button.service").first.click()
    page.wait_for_selector("#ticket-priority")
    label = page.inner_text("#ticket-label").strip()
    eng = server.engine()
    try:
        with eng.connect() as conn:
            payload = json.loads(conn.execute(sa.text("select payload from print_jobs where kind = 'ticket' "
                                                      "and ref = :l order by id desc"), {"l": label}).scalar())
        assert payload["priority"] is True
        svc = core.get_service(cfg, payload["service_code"])
        with eng.begin() as conn:  # regular tickets already waiting: the priority one is still called first
            core.take_ticket(conn, cfg, svc.code)
            called = core.call_next(conn, cfg, svc.counters[0])
        assert called.label == label
    finally:
        eng.dispose()
    ctx = browser.new_context(viewport={"width": 1080, "height": 1920})
    try:
        display = ctx.new_page()
        display.goto(server.url + "/display")
        latest = display.locator(f'.column[data-service="{svc.code}"] .call-latest')
        assert latest.locator(".call-label").inner_text() == label
        assert latest.locator(".call-priority").inner_text() == "Ưu tiên"
    finally:
        ctx.close()


# --- satisfaction rating ----------------------------------------------------------------------

def _ratings(server: Any) -> list[dict[str, Any]]:
    import sqlalchemy as sa

    eng = server.engine()
    try:
        with eng.connect() as conn:
            return [dict(r) for r in conn.execute(sa.text("select * from ratings order by id")).mappings()]
    finally:
        eng.dispose()


def test_after_the_status_screen_one_tap_rates_and_a_low_score_asks_why(page, server, scanner):
    before = len(_ratings(server))
    page.goto(server.url + "/code")
    Taps(page).keys("8")
    page.click("#submit-digits")
    page.wait_for_selector("#status")
    page.click("#go-home")  # "Xong": the rating comes before the next citizen
    page.wait_for_selector("#rating-form")
    assert page.inner_text("#rate-5").strip() == "Rất hài lòng"
    audit_and_shoot(page, "visit-rating")
    page.click("#rate-2")
    page.wait_for_selector("#reasons-form")
    audit_and_shoot(page, "visit-rating-reasons")
    page.click('.reason[data-reason="wait"]')
    page.click("#send-rating")
    page.wait_for_selector("#rating-thanks")
    page.goto(server.url + "/rate")
    page.click("#rate-5")  # a good score: thanks at once, no questions
    page.wait_for_selector("#rating-thanks")
    rows = _ratings(server)[before:]
    assert [(r["score"], r["reasons"], r["channel"]) for r in rows] == [(2, "wait", "kiosk"), (5, "", "kiosk")]
    assert rows[0]["procedure"] == "Chứng thực bản sao" and rows[1]["procedure"] is None
    assert not any(_today_code("0008") in str(v) for r in rows for v in r.values())  # anonymous


def test_the_rating_screen_goes_home_by_itself_after_thirty_seconds(page, server, scanner):
    page.goto(server.url + "/rate")
    assert page.get_attribute("body", "data-idle-ms") == "30000"
