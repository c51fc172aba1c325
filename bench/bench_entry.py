"""Taps and seconds from the home screen to the status screen for a typical dossier code (issue 14).
Run by hand against any checkout (real gunicorn, headless Chromium at 800x480, the Pi's display):

    PYTHONPATH=. .venv/bin/python bench/bench_entry.py [--json]

A citizen's taps are counted as the script makes them: "Nhập mã hồ sơ" on home, each key, "Tra cứu".
When the code screen offers digits-first entry (#digit-keys) the citizen types the date and sequence
from the receipt (and, second case, the sequence alone for a dossier filed this week); otherwise every
character of the full code on the full keypad. Seconds = taps x 1.5 s (an elderly first-time user's
pace, as in the issue) + the measured time of the page loads in between.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from kiosk_support import serve, today_vn

TAP_S = 1.5


def _seed(srv) -> str:
    code = f"000.00.21.H42-{today_vn() - timedelta(days=1):%y%m%d}-0008"
    srv.ingest([{"code": code, "secret": "SEQ123", "procedure": "Chứng thực bản sao", "status": "processing",
                 "appointment_date": (today_vn() + timedelta(days=3)).isoformat()},
                {"code": "000.00.21.H42-251125-0001", "procedure": "Đăng ký khai sinh", "status": "processing"}])
    return code


def walk(page, url: str, code: str, typed: str | None) -> dict[str, float]:
    taps, waited = 0, 0.0

    def tap(selector: str, navigates: bool = False) -> None:
        nonlocal taps, waited
        started = time.perf_counter()
        if navigates:
            with page.expect_navigation():
                page.click(selector)
        else:
            page.click(selector)
        taps += 1
        if navigates:
            waited += time.perf_counter() - started

    page.goto(url + "/")
    tap("#go-code", navigates=True)
    if page.locator("#digit-keys").count() and page.locator("#digit-keys").is_visible() and typed is not None:
        for ch in typed:
            tap(f'#digit-keys .key[data-key="{ch}"]')
        tap("#submit-digits", navigates=True)
        how = "digits"
    else:
        if page.locator("#mode-full").count() and page.locator("#mode-full").is_visible():
            tap("#mode-full")
        for ch in code:
            tap(f'#keypad .key[data-key="{ch}"]')
        tap("#submit-code", navigates=True)
        how = "full code"
    page.wait_for_selector("#status")
    assert page.inner_text("#dossier-code") == code
    return {"entry": how, "taps": taps, "page_loads_s": round(waited, 3), "seconds": round(taps * TAP_S + waited, 1)}


def main() -> int:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-entry-"))
    results = {}
    for srv in serve(root, {"kiosk": {"threads": 8}}):
        code = _seed(srv)
        date_seq = code.split("-", 1)[1].replace("-", "")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                         args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            for name, typed in (("date_and_sequence", date_seq), ("sequence_only", "8")):
                ctx = browser.new_context(viewport={"width": 800, "height": 480}, locale="vi-VN")
                results[name] = walk(ctx.new_page(), srv.url, code, typed)
                ctx.close()
            browser.close()
    results["code"] = code
    print(json.dumps(results, ensure_ascii=False, indent=None if args.json else 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
