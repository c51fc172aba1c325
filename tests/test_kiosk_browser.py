"""Citizen screens in real headless Chromium against real gunicorn: every flow, every input source,
hostile payloads, language, idle reset, office closed, layout at the three kiosk sizes."""
from __future__ import annotations

import re
import time
from typing import Any, Iterator

import pytest
import sqlalchemy as sa
from kiosk_support import audit_and_shoot, sample_dossiers, serve

from kiosk.scanner.channel import EventServer

CODE_A = "000.00.21.H42-251125-0001"  # processing, phone on file, secret ABC234
CODE_B = "000.00.21.H42-251120-0002"  # overdue, no phone, secret XYZ789
CODE_READY = "000.00.21.H42-251101-0003"
CODE_DOCS = "000.00.21.H42-251110-0004"
CODE_EVIL = "000.00.21.H42-251125-0666"
HOSTILE = {
    "script": "<script>window.__pwned=1</script>",
    "js_url": "javascript:window.__pwned=1//000.00.21.H42-251125-0001",
    "long": "A" * 10_240,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("kiosk-open")
    yield from _seeded(serve(root, {"kiosk": {"threads": 32, "idle_timeout_s": 45}}))


def _seeded(gen: Iterator[Any]) -> Iterator[Any]:
    for srv in gen:
        srv.ingest(sample_dossiers())
        yield srv


@pytest.fixture(scope="module")
def scanner(server: Any) -> Iterator[EventServer]:
    """The scanner process's side of the event socket, driven by the test."""
    import threading

    import cv2

    from tests.scanner_media import receipt_frame

    events = EventServer(server.socket_path).start()
    events.publish("camera", {"state": "ok", "detail": "test camera"})
    # A receipt held up to the camera, as the preview the scanner sends while the scan screen watches.
    ok, jpeg = cv2.imencode(".jpg", receipt_frame("https://motcua.example.vn/tra-cuu-ho-so?ma=X", (640, 480)))
    stop = threading.Event()

    def previews() -> None:
        while not stop.wait(0.3):
            if events.preview_wanted:
                events.publish_preview(jpeg.tobytes())

    threading.Thread(target=previews, daemon=True).start()
    yield events
    stop.set()
    events.close()


@pytest.fixture
def kpage(page: Any, server: Any) -> Iterator[Any]:
    """A page that records every request and console error: nothing may leave the machine, and no
    content-security-policy violation may happen on any screen."""
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    outside = [u for u in requests if not u.startswith(server.url) and not u.startswith("data:")]
    assert not outside, f"requests left the kiosk: {outside}"
    csp = [e for e in errors if "Content Security Policy" in e or "Refused" in e]
    assert not csp, csp
    assert page.evaluate("typeof window.__pwned") == "undefined"


def scanned(page: Any, text: str) -> None:
    """A USB barcode scanner: the whole payload as a fast burst of key presses ending in Enter."""
    page.keyboard.type(text, delay=0)
    page.keyboard.press("Enter")


def full_keypad(page: Any) -> None:
    """The code screen opens on the digits keypad (date + sequence); codes with letters use the full one."""
    if page.locator("#mode-full").is_visible():
        page.click("#mode-full")


def tap_keys(page: Any, text: str) -> None:
    full_keypad(page)
    for ch in text:
        page.click(f'#keypad .key[data-key="{ch}"]')


def status_label(page: Any) -> str:
    return page.inner_text("#status-label")


def assert_fact_labels_shown(page: Any, labels: dict[str, str]) -> None:
    """At every kiosk size, each fact on the status screen has its label on screen next to its value
    (an elderly citizen cannot tell a bare date is the appointment date)."""
    for w, h in ((800, 480), (1280, 800), (1080, 1920)):
        page.set_viewport_size({"width": w, "height": h})
        for fact, label in labels.items():
            dt = page.locator(f"#{fact}-label")
            assert dt.is_visible(), f"{w}x{h}: label of #{fact} hidden"
            assert dt.inner_text().strip().rstrip(":") == label
            box, value = dt.bounding_box(), page.locator(f"#{fact}").bounding_box()
            assert box and value and box["width"] > 0 and box["y"] >= 0 and box["y"] + box["height"] <= h
            # the label sits on the value's line or the line just above it, not elsewhere on the screen
            gap = value["y"] - box["y"]
            assert -box["height"] < gap < 2 * box["height"], f"{w}x{h}: #{fact} label not beside its value"
    page.set_viewport_size({"width": 1280, "height": 800})


# --- screens and layout -----------------------------------------------------------------------

def test_home_offers_three_large_actions_and_every_screen_fits_the_three_sizes(kpage, server, scanner):
    resp = kpage.goto(server.url + "/")
    assert resp.status == 200
    assert resp.headers["content-security-policy"].startswith("default-src 'self'")
    assert kpage.locator(".action").count() == 3
    for sel in ("#go-scan", "#go-code", "#go-ticket"):
        box = kpage.locator(sel).bounding_box()
        assert box["height"] >= 120 and box["width"] >= 200
    assert kpage.evaluate("getComputedStyle(document.body).userSelect") == "none"
    assert kpage.evaluate("document.fonts.check('24px \"Noto Sans Kiosk\"', 'Hồ sơ đã được giải quyết')")
    audit_and_shoot(kpage, "home")

    kpage.click("#go-scan", no_wait_after=True)
    kpage.wait_for_selector("#viewer:not([hidden]) .guide")
    kpage.wait_for_function("() => document.getElementById('preview').naturalWidth > 0")  # the live preview shows
    audit_and_shoot(kpage, "scan")

    kpage.goto(server.url + "/code")
    audit_and_shoot(kpage, "code")

    kpage.goto(server.url + "/ticket")
    audit_and_shoot(kpage, "ticket-services")


def test_keypad_lookup_with_secret_shows_status_masked_name_and_next_steps(kpage, server, scanner):
    kpage.goto(server.url + "/code")
    tap_keys(kpage, CODE_A.upper())
    kpage.click('.field[data-field="secret"]')
    tap_keys(kpage, "ABC234")
    assert kpage.input_value("#f-code") == CODE_A
    kpage.click("#submit-code")
    kpage.wait_for_selector("#status")
    assert status_label(kpage) == "Đang xử lý"
    assert kpage.inner_text("#procedure") == "Đăng ký khai sinh"
    assert kpage.inner_text("#applicant") == "N***** V** Hùng"
    text = kpage.inner_text("body")
    assert "Nguyễn Văn" not in text and "0912345678" not in text and "345678" not in text
    assert "ngày hẹn trả" in kpage.inner_text("#next-steps")
    assert_fact_labels_shown(kpage, {"procedure": "Thủ tục", "appointment": "Ngày hẹn trả", "applicant": "Người nộp"})
    audit_and_shoot(kpage, "status")


def test_without_secret_only_status_procedure_and_dates_are_shown(kpage, server, scanner):
    kpage.goto(server.url + "/code")
    tap_keys(kpage, CODE_A)
    kpage.click("#submit-code")
    kpage.wait_for_selector("#status")
    assert kpage.locator("#applicant").count() == 0
    assert "Hùng" not in kpage.inner_text("body")
    assert kpage.locator("#appointment").count() == 1
    assert_fact_labels_shown(kpage, {"procedure": "Thủ tục", "appointment": "Ngày hẹn trả"})
    audit_and_shoot(kpage, "status-nosecret")


def test_overdue_dossier_is_shown_as_overdue_in_red(kpage, server, scanner):
    kpage.goto(server.url + "/code")
    tap_keys(kpage, CODE_B)
    kpage.click("#submit-code")
    kpage.wait_for_selector("#status")
    assert kpage.inner_text("#overdue") == "Quá hạn"
    assert "tone-bad" in kpage.get_attribute("#status", "class")
    assert "quá ngày hẹn trả" in kpage.inner_text("#next-steps")
    assert_fact_labels_shown(kpage, {"procedure": "Thủ tục", "appointment": "Ngày hẹn trả"})
    audit_and_shoot(kpage, "status-overdue")


def test_result_ready_tells_where_to_collect_and_what_to_bring(kpage, server, scanner):
    kpage.goto(server.url + "/")
    scanned(kpage, f"D-RDY456-{CODE_READY}")
    kpage.wait_for_selector("#status")
    assert status_label(kpage) == "Chờ trả kết quả"
    steps = kpage.inner_text("#next-steps")
    assert "Quầy trả kết quả" in steps and "căn cước" in steps
    assert kpage.locator("#ask-sms").count() == 0  # the notice has already gone out
    assert_fact_labels_shown(kpage, {"procedure": "Thủ tục", "appointment": "Ngày hẹn trả", "applicant": "Người nộp"})
    audit_and_shoot(kpage, "status-ready")


def test_not_found_screen_tells_the_citizen_what_to_do(kpage, server, scanner):
    kpage.goto(server.url + "/code")
    tap_keys(kpage, "000.00.21.H42-991231-9999")
    kpage.click("#submit-code")
    kpage.wait_for_selector("#not-found")
    assert "000.00.21.H42-991231-9999" in kpage.inner_text("#code-echo")
    audit_and_shoot(kpage, "not-found")


# --- input sources ----------------------------------------------------------------------------

def test_usb_scanner_burst_looks_up_from_any_screen_and_slow_typing_goes_to_the_field(kpage, server, scanner):
    kpage.goto(server.url + "/scan", wait_until="domcontentloaded")  # the preview stream keeps "load" waiting
    scanned(kpage, f"https://motcua.example.vn/tra-cuu-ho-so?ma={CODE_A}&secretKey=ABC234")
    kpage.wait_for_selector("#status")
    assert kpage.inner_text("#applicant") == "N***** V** Hùng"

    kpage.goto(server.url + "/code")
    full_keypad(kpage)
    kpage.keyboard.type("h42.1", delay=120)  # a person at a keyboard: each key well apart
    time.sleep(0.2)
    assert kpage.input_value("#f-code") == "H42.1"
    assert kpage.url.endswith("/code")


def test_camera_scan_event_opens_the_status_from_any_screen(kpage, server, scanner):
    for start in ("/", "/code", "/scan"):
        kpage.goto(server.url + start, wait_until="domcontentloaded")
        kpage.wait_for_selector("body[data-stream=live]", state="attached")  # the event stream is connected
        scanner.publish("scan", {"code": CODE_DOCS, "secret": "DOC777", "kind": "url", "decoded_at": time.time()})
        kpage.wait_for_selector("#status", timeout=5000)
        assert status_label(kpage) == "Yêu cầu bổ sung giấy tờ"


def test_scan_screen_shows_the_scanner_hints_and_camera_loss(kpage, server, scanner):
    kpage.goto(server.url + "/scan", wait_until="domcontentloaded")
    kpage.wait_for_selector("#viewer:not([hidden])")
    kpage.wait_for_selector("body[data-stream=live]", state="attached")  # the event stream is connected
    scanner.publish("hint", {"hint": "hold_still"})
    kpage.wait_for_selector('[data-hint="hold_still"]:not([hidden])')
    scanner.publish("hint", {"hint": "move_closer"})
    kpage.wait_for_selector('[data-hint="move_closer"]:not([hidden])')
    assert kpage.locator('[data-hint="hold_still"]').is_hidden()
    scanner.publish("hint", {"hint": "flatten"})
    kpage.wait_for_selector('[data-hint="flatten"]:not([hidden])')
    flatten = "Vuốt phẳng tờ giấy, hoặc nghiêng giấy hay điện thoại một chút cho đỡ chói."
    assert kpage.inner_text("#hint").strip() == flatten
    audit_and_shoot(kpage, "scan-hint-flatten")  # the longest hint still fits every kiosk screen size
    scanner.publish("hint", {"hint": "<img src=x onerror=alert(1)>"})  # not one of the scanner's hints
    kpage.wait_for_selector('[data-hint=""]:not([hidden])')
    assert kpage.locator('[data-hint="flatten"]').is_hidden()
    scanner.publish("camera", {"state": "unavailable", "detail": "unplugged"})
    kpage.wait_for_selector("#camera-unavailable:not([hidden])")
    assert kpage.locator("#viewer").is_hidden()
    audit_and_shoot(kpage, "camera-unavailable")
    scanner.publish("camera", {"state": "ok", "detail": "back"})
    kpage.wait_for_selector("#viewer:not([hidden])")


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_payloads_from_every_source_are_refused_without_running_or_navigating(kpage, server, scanner, kind):
    payload = HOSTILE[kind]
    # 1. USB wedge (a 10 KB burst is dispatched in-page: real key presses would take minutes)
    kpage.goto(server.url + "/")
    if len(payload) > 1000:
        kpage.evaluate("""p => { for (const k of p + '\\n') document.dispatchEvent(new KeyboardEvent('keydown',
            {key: k === '\\n' ? 'Enter' : k, bubbles: true})); }""", payload)
    else:
        scanned(kpage, payload)
    kpage.wait_for_selector("#unreadable")
    assert kpage.url.startswith(server.url)
    if kind == "long":
        audit_and_shoot(kpage, "unreadable")

    # 2. camera scanner event
    kpage.goto(server.url + "/code")
    kpage.wait_for_selector("body[data-stream=live]", state="attached")  # the event stream is connected
    scanner.publish("scan", {"code": payload, "secret": "javascript:alert(1)", "kind": "bare"})
    kpage.wait_for_selector("#unreadable")

    # 3. keypad form tampered with (the keys themselves only allow 0-9 A-Z . -)
    kpage.goto(server.url + "/code")
    full_keypad(kpage)
    kpage.evaluate("p => { document.getElementById('f-code').value = p; }", payload)
    kpage.click("#submit-code")
    kpage.wait_for_selector("#unreadable")
    assert kpage.url.startswith(server.url)
    assert kpage.locator("script:not([src])").count() == 0


def test_dossier_fields_with_markup_are_shown_as_text(kpage, server, scanner):
    kpage.goto(server.url + "/")
    scanned(kpage, f"D-EVIL66-{CODE_EVIL}")
    kpage.wait_for_selector("#status")
    assert kpage.inner_text("#procedure").startswith('<img src=x onerror="window.__pwned=1">')
    assert kpage.locator("main img").count() == 0 and kpage.locator("main script").count() == 0
    assert "<script>" not in kpage.inner_text("#applicant")  # masked to its first letters
    # the longest procedure name with every fact: still labelled, clamped, and the screen fits
    assert_fact_labels_shown(kpage, {"procedure": "Thủ tục", "appointment": "Ngày hẹn trả", "applicant": "Người nộp"})
    audit_and_shoot(kpage, "status-long")
    time.sleep(0.2)


# --- language, SMS, printing, queue -----------------------------------------------------------

def test_language_switch_to_english_and_back(kpage, server, scanner):
    kpage.goto(server.url + "/")
    assert kpage.get_attribute("html", "lang") == "vi"
    kpage.click("a.lang")
    kpage.wait_for_selector("html[lang=en]")
    assert "Scan the code on your receipt" in kpage.inner_text("#go-scan")
    audit_and_shoot(kpage, "home-en")
    scanned(kpage, f"D-ABC234-{CODE_A}")
    kpage.wait_for_selector("#status")
    assert status_label(kpage) == "Being processed"
    assert_fact_labels_shown(kpage, {"procedure": "Procedure", "appointment": "Appointment date",
                                     "applicant": "Applicant"})
    audit_and_shoot(kpage, "status-en")
    kpage.click("button.lang")
    kpage.wait_for_selector("html[lang=vi] #status")
    assert status_label(kpage) == "Đang xử lý"


def test_citizen_without_phone_adds_one_with_consent(kpage, server, scanner):
    kpage.goto(server.url + "/")
    scanned(kpage, f"D-XYZ789-{CODE_B}")
    kpage.wait_for_selector("#status")
    kpage.click("#ask-sms")
    kpage.wait_for_selector("#consent-text")
    assert "đồng ý" in kpage.inner_text("#consent-text")
    audit_and_shoot(kpage, "phone")
    tap_keys(kpage, "0912")
    kpage.click("#consent-yes")
    kpage.wait_for_selector("#phone-error")
    assert kpage.input_value("#f-phone") == "0912"
    tap_keys(kpage, "345999")
    kpage.click("#consent-yes")
    kpage.wait_for_selector("#notice")
    assert "Đã lưu số điện thoại" in kpage.inner_text("#notice")
    eng = server.engine()
    try:
        with eng.connect() as conn:
            phone = conn.execute(sa.text("select phone from dossiers where code = :c"), {"c": CODE_B}).scalar()
    finally:
        eng.dispose()
    assert phone == "+84912345999"


def test_citizen_with_phone_on_file_is_told_where_the_sms_goes(kpage, server, scanner):
    kpage.goto(server.url + "/")
    scanned(kpage, f"D-ABC234-{CODE_A}")
    kpage.wait_for_selector("#status")
    kpage.click("#ask-sms")
    kpage.wait_for_selector("#notice")
    notice = kpage.inner_text("#notice")
    assert "nhắn tin" in notice and "0912345678" not in notice


def test_print_status_slip(kpage, server, scanner):
    kpage.goto(server.url + "/")
    scanned(kpage, f"D-ABC234-{CODE_A}")
    kpage.wait_for_selector("#print-slip")
    kpage.click("#print-slip")
    kpage.wait_for_selector("#notice")
    assert re.search(r"in phiếu|máy in", kpage.inner_text("#notice"), re.I)
    audit_and_shoot(kpage, "slip")


def test_take_a_queue_number_prints_a_ticket(kpage, server, scanner):
    kpage.goto(server.url + "/")
    kpage.click("#go-ticket")
    kpage.wait_for_selector("button.service")
    kpage.locator("button.service").first.click()
    kpage.wait_for_selector("#ticket-label")
    assert re.fullmatch(r"[A-Z]+\d{3}", kpage.inner_text("#ticket-label").strip())
    audit_and_shoot(kpage, "ticket")
    eng = server.engine()
    try:
        with eng.connect() as conn:
            kinds = conn.execute(sa.text("select kind from print_jobs")).scalars().all()
    finally:
        eng.dispose()
    assert "ticket" in kinds


def test_printer_out_of_paper_is_told_before_printing(kpage, server, scanner):
    from kiosk.printing.jobs import record_state

    eng = server.engine()
    try:
        with eng.begin() as conn:
            record_state(conn, "paper_out", "test")
        kpage.goto(server.url + "/")
        scanned(kpage, f"D-ABC234-{CODE_A}")
        kpage.click("#print-slip")
        kpage.wait_for_selector("#notice")
        assert "hết giấy" in kpage.inner_text("#notice")
    finally:
        with eng.begin() as conn:
            record_state(conn, "ok", "test")
        eng.dispose()


# --- office closed, idle reset and the LAN (another server: closed today, 2 s idle, not the kiosk) ---

LAN_RATE = 6


@pytest.fixture(scope="module")
def closed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from kiosk_support import today_vn

    other_day = (today_vn().weekday() + 3) % 7
    root = tmp_path_factory.mktemp("kiosk-closed")
    sections = {"kiosk": {"threads": 32, "idle_timeout_s": 2, "kiosk_addresses": ["10.255.255.1"],
                          "public_lookup_rate": f"{LAN_RATE} per minute"}}
    yield from _seeded(serve(root, sections, [{"days": [other_day], "open": "07:30:00", "close": "11:30:00"}],
                             workers=2))


def test_office_closed_screen_outside_opening_hours_still_allows_a_lookup(page, closed_server):
    page.goto(closed_server.url + "/")
    page.wait_for_selector("#closed")
    hours = page.inner_text(".hours")
    assert "7:30–11:30" in hours
    assert page.locator("#go-ticket").count() == 0
    audit_and_shoot(page, "closed")
    page.goto(closed_server.url + "/ticket")
    page.wait_for_selector("#closed")


def test_idle_timeout_returns_home_in_vietnamese_with_nothing_left_on_screen(page, closed_server):
    page.goto(closed_server.url + "/lang/en?next=/code")
    page.wait_for_selector("html[lang=en] #keypad-form")
    tap_keys(page, CODE_A)
    page.click(".field[data-field=secret]")
    tap_keys(page, "ABC234")
    page.click("#submit-code")
    page.wait_for_selector("#status")
    assert page.locator("#print-slip").count() == 0  # not the kiosk's own screen: no printing
    started = time.monotonic()
    page.wait_for_selector("#closed", timeout=8000)
    waited = time.monotonic() - started
    assert 1.5 <= waited <= 6, waited
    assert page.get_attribute("html", "lang") == "vi"
    body = page.inner_text("body")
    assert CODE_A not in body and "Hùng" not in body
    page.go_back()  # nothing of the dossier comes back from history either
    page.wait_for_load_state()
    assert "Hùng" not in page.inner_text("body")


def test_lookups_from_the_lan_are_rate_limited_across_workers(closed_server):
    import concurrent.futures
    import urllib.error
    import urllib.parse
    import urllib.request

    def one(i: int) -> int:
        body = urllib.parse.urlencode({"code": f"000.00.21.H42-991231-{i:04d}"}).encode()
        try:
            req = urllib.request.Request(closed_server.url + "/lookup", data=body)
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            if exc.code == 429:
                assert "quá nhiều lần" in exc.read().decode()
            return exc.code

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(one, range(3 * LAN_RATE)))
    answered = [c for c in codes if c != 429]
    assert all(c == 404 for c in answered), codes  # not found, but answered
    # Each of the two workers holding its own counter would let up to 2 x LAN_RATE through.
    assert len(answered) <= LAN_RATE
    assert codes.count(429) >= 2 * LAN_RATE
    req = urllib.request.Request(closed_server.url + "/slip", data=f"code={CODE_A}".encode())
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("printing from the LAN must be refused")
    except urllib.error.HTTPError as exc:
        assert exc.code in (403, 429)


def test_the_real_scanner_process_on_a_video_brings_up_the_status(page, tmp_path_factory):
    """`kiosk scan --video` (the camera scanner process) -> its socket -> SSE -> the screen."""
    import signal
    import subprocess
    import sys

    from tests.scanner_media import desk, receipt_frame, write_video

    root = tmp_path_factory.mktemp("kiosk-scan")
    url = f"https://motcua.example.vn/tra-cuu-ho-so?ma={CODE_DOCS}&secretKey=DOC777"
    video = write_video(root / "receipt.avi", [(desk(), 10), (receipt_frame(url), 15), (desk(), 10)])
    for srv in _seeded(serve(root, {"kiosk": {"threads": 16}, "scanner": {"repeat_interval_s": 1.0}})):
        page.goto(srv.url + "/scan", wait_until="domcontentloaded")
        proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "--config", str(srv.config_path), "scan",
                                 "--video", str(video), "--loop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            page.wait_for_selector("#status", timeout=20_000)
            assert status_label(page) == "Yêu cầu bổ sung giấy tờ"
            assert page.inner_text("#applicant") == "P*** T** Hằng"  # the QR carried the secret
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
