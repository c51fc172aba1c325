"""The citizen's visit in real headless Chromium against real gunicorn (issue 14): a code in a few taps,
input never lost, messages that match what the citizen did, at the three kiosk sizes."""
from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, Iterator

import pytest
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


def test_usb_scanner_burst_while_typing_a_phone_number_asks_first(page, server, scanner):
    page.goto(server.url + "/")
    page.keyboard.type(f"D-DOC777-{CODE_DOCS}", delay=0)
    page.keyboard.press("Enter")
    page.wait_for_selector("#ask-sms")
    page.click("#ask-sms")
    page.wait_for_selector("#f-phone")
    for d in "0912":
        page.click(f'#keypad .key[data-key="{d}"]')
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
