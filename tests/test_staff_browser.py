"""Staff pages in real headless Chromium against real gunicorn: sign-in and lockout, dossier search,
status update (one notice for "result ready"), phone, notices, device health, audit log, and hostile
dossier data that must never run; the kiosk screen's own browser is refused."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from kiosk import health
from kiosk.store.ingest import DossierEvent, apply_event
from kiosk.store.schema import dossiers
from motcua.config import load_config
from motcua.db import make_engine
from motcua.timeutil import utcnow
from sms_gateway.schema import notices
from tests.conftest import CHEAP_HASHING

PASSWORD = "mat-khau-can-bo-2025"
CODE = "000.00.21.H42-251125-0001"
HOSTILE = {
    "script": "<script>window.__pwned=1;alert(1)</script>",
    "img": '"><img src=x onerror="window.__pwned=1;alert(1)">',
    "js": "javascript:window.__pwned=1;alert(1)",
}
LONG = "Đ" * 10_240


def _config_path(tmp_path: Path, base: str) -> Path:
    return tmp_path / f"server-{urlsplit(base).port}.toml"


def _kiosk_cli(cfg_path: Path, *args: str, password: str = PASSWORD) -> None:
    env = dict(os.environ, MOTCUA_STAFF_PASSWORD=password)
    res = subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(cfg_path), *args],
                         env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


def _seed(engine: sa.Engine) -> None:
    now = utcnow()
    with engine.begin() as conn:
        apply_event(conn, DossierEvent(code=CODE, status="processing", applicant_name="Nguyễn Văn Hùng",
                                       procedure="Đăng ký khai sinh", field="Hộ tịch", phone="0912345678"), via="test")
        # Hostile text in every field, written past ingest's length limits (a 10 KB field too).
        for i, (name, text) in enumerate(HOSTILE.items()):
            conn.execute(dossiers.insert().values(
                code=f"EVIL-{name}", secret=text[:64], procedure=text + LONG if i == 0 else text, field=text,
                applicant_name=text, phone=text[:32], status="waiting", source_status=text[:64],
                created_at=now, updated_at=now))
            conn.execute(notices.insert().values(
                idempotency_key=f"evil-{name}", dossier_code=f"EVIL-{name}", kind="result_ready",
                phone_raw=text[:64], params="{}", state="failed", attempts=5, last_error=text,
                created_at=now, updated_at=now))


def _watch(page: Any) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {"alerts": [], "csp": [], "outside": []}

    def on_dialog(dialog: Any) -> None:
        if dialog.type == "confirm":
            dialog.accept()
        else:
            seen["alerts"].append(dialog.message)
            dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: seen["csp"].append(m.text) if "Content Security Policy" in m.text else None)
    page.on("request", lambda r: seen["outside"].append(r.url) if not r.url.startswith("http://127.0.0.1") else None)
    return seen


def _go(page: Any, selector: str) -> None:
    """Click something that loads a new page, and wait for it (reading before it arrives is a race)."""
    with page.expect_navigation():
        page.click(selector)


def _no_script_ran(page: Any) -> None:
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img").count() == 0
    assert page.locator("a[href^='javascript']").count() == 0


def _sign_in(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/staff/login")
    page.fill("#username", username)
    page.fill("#password", password)
    _go(page, "button.primary")


def test_staff_flow_in_chromium(live_server, page, tmp_path):
    base = live_server({"kiosk": {"kiosk_addresses": ["192.0.2.10"]}, "staff": {"login_rate": "60 per minute",
                                                                                  **CHEAP_HASHING}})
    cfg_path = _config_path(tmp_path, base)
    _kiosk_cli(cfg_path, "user", "add", "quantri", "--role", "admin", "--name", "Quản Trị Viên")
    _kiosk_cli(cfg_path, "user", "add", "canbo", "--name", "Cán Bộ Một Cửa")
    engine = make_engine(load_config(cfg_path))
    _seed(engine)
    seen = _watch(page)

    # Anonymous: sent to sign-in. Five wrong passwords lock the account, even for the right one.
    page.goto(f"{base}/staff/notices")
    assert "/staff/login?next=" in page.url
    for _ in range(5):
        _sign_in(page, base, "canbo", "sai-mat-khau")
    assert "tạm khóa" in page.inner_text("#login-error")
    _sign_in(page, base, "canbo", PASSWORD)
    assert "tạm khóa" in page.inner_text("#login-error")

    # The admin signs in and lands on the page asked for.
    page.goto(f"{base}/staff/notices?state=failed")
    page.fill("#username", "quantri")
    page.fill("#password", PASSWORD)
    _go(page, "button.primary")
    assert page.url.endswith("/staff/notices?state=failed")
    assert "Quản Trị Viên" in page.inner_text("header")
    reasons = page.locator("td.reason").all_inner_texts()
    assert any(HOSTILE["script"] in r for r in reasons) and any(HOSTILE["img"] in r for r in reasons)
    _no_script_ran(page)

    # Search by phone, open the dossier, move it to "result ready" twice: one notice.
    page.goto(f"{base}/staff/dossiers")
    for name in HOSTILE:  # hostile rows are listed as plain text
        assert page.locator(f"a:text-is('EVIL-{name}')").count() == 1
    _no_script_ran(page)
    page.fill("#q", "0912 345 678")
    _go(page, "form.search button")
    _go(page, f"a:text-is('{CODE}')")
    assert page.inner_text("#dossier-code") == CODE
    for _ in range(2):
        page.select_option("#status", "result_ready")
        _go(page, "#status-form button")
        assert page.inner_text("#dossier-status") == "Chờ trả kết quả"
    assert "không có gì thay đổi" in page.inner_text("main")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(notices)
                            .where(notices.c.dossier_code == CODE)).scalar_one() == 1
    page.fill("#phone", "0123")
    _go(page, "#phone-form button")
    assert "Số điện thoại không hợp lệ" in page.inner_text(".flash-error")
    page.fill("#phone", "01687654321")
    _go(page, "#phone-form button")
    assert page.inner_text("#dossier-phone") == "+84387654321"
    assert "quantri" in page.inner_text("#history")

    # Every hostile dossier's own page: shown as text, nothing runs, long text wraps inside the page.
    for name, text in HOSTILE.items():
        page.goto(f"{base}/staff/dossiers")
        _go(page, f"a:text-is('EVIL-{name}')")
        assert text in page.inner_text("dl.facts")
        _no_script_ran(page)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")

    # Notices: cancel the queued notice (confirm dialog), then send it again.
    page.goto(f"{base}/staff/notices?state=queued")
    row = page.locator("#notices tbody tr").first
    with page.expect_navigation():
        row.locator("button[data-action=cancel]").click()
    assert "Đã cập nhật tin nhắn" in page.inner_text(".flash-success")
    page.goto(f"{base}/staff/notices?state=cancelled")
    with page.expect_navigation():
        page.locator("#notices button[data-action=retry]").first.click()
    with engine.connect() as conn:
        assert conn.execute(sa.select(notices.c.state).where(notices.c.dossier_code == CODE)).scalar_one() == "queued"

    # Device health and the audit log.
    page.goto(f"{base}/staff/health")
    rows = page.locator("#health tbody tr")
    # one row per check the code runs (kiosk.health.GATHERERS), each under its check's name
    assert rows.count() == len(health.GATHERERS)
    assert {rows.nth(i).get_attribute("id") for i in range(rows.count())} == {
        "check-" + fn.__name__.removeprefix("check_") for fn in health.GATHERERS}
    assert "kiểm tra tệp (quick_check) đạt" in page.inner_text("#check-database")
    page.goto(f"{base}/staff/audit")
    log = page.inner_text("#audit")
    for text in ("Cập nhật trạng thái hồ sơ", "Sửa số điện thoại", "Hủy tin nhắn", "Gửi lại tin nhắn",
                 "Đăng nhập bị chặn", "cli:"):
        assert text in log, text
    _no_script_ran(page)

    # English on request; then sign out, and the pages are closed again.
    _go(page, ".lang button")
    assert "Audit log" in page.inner_text("h1")
    _go(page, "#logout")
    page.goto(f"{base}/staff/dossiers")
    assert "/staff/login" in page.url

    # An official cannot open the audit log.
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM staff_lockouts")
    _sign_in(page, base, "canbo", PASSWORD)
    resp = page.goto(f"{base}/staff/audit")
    assert resp.status == 403

    assert not seen["alerts"], seen["alerts"]
    assert not seen["csp"], seen["csp"]  # no page needed inline script or style
    assert not seen["outside"], seen["outside"]
    engine.dispose()


def test_the_kiosk_screen_browser_is_refused(live_server, page):
    base = live_server()  # default [kiosk] kiosk_addresses: 127.0.0.1 is the kiosk screen itself
    for url in ("/staff/login", "/staff/dossiers", "/counter/"):
        resp = page.goto(base + url)
        assert resp.status == 403, url
        assert "không mở được từ màn hình kiosk" in page.inner_text("main")
    assert not [c for c in page.context.cookies() if c["name"] == "motcua_staff"]
