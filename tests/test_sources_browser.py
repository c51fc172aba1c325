"""The status screen in real headless Chromium (real gunicorn) while the provincial system hangs: once
the deadline passes the store's answer is shown, with the line saying how fresh it is."""
from __future__ import annotations

import time
from typing import Any, Iterator

import pytest
import sqlalchemy as sa
from kiosk_support import audit_and_shoot, serve

from kiosk.store.schema import dossiers
from motcua.config import load_config
from motcua.hours import site_zone
from tests.emulators.opencps import OpenCpsEmulator

CODE = "000.00.21.H42-251125-0001"
DEADLINE_S = 1.0


@pytest.fixture(scope="module")
def hanging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, OpenCpsEmulator]]:
    """A kiosk following an OpenCPS emulator that never answers, with one dossier already stored."""
    with OpenCpsEmulator() as emu:
        emu.fault = "hang"
        source = {"kind": "opencps", "base_url": f"{emu.url}/o/rest/v2", "lookup_deadline_s": DEADLINE_S,
                  "read_timeout_s": 3.0,
                  "opencps": {"group_id": str(emu.group_id), "username": emu.username, "password": emu.password}}
        for srv in serve(tmp_path_factory.mktemp("kiosk-source"), {"source": source}):
            srv.ingest([{"code": CODE, "status": "processing", "procedure": "Đăng ký khai sinh"}])
            yield srv, emu


def tap_code(page: Any, text: str) -> None:
    if page.locator("#mode-full").is_visible():
        page.click("#mode-full")
    for ch in text:
        page.click(f'#keypad .key[data-key="{ch}"]')


def test_status_screen_shows_the_stored_answer_and_its_freshness_when_the_source_hangs(page, hanging):
    srv, emu = hanging
    engine = srv.engine()
    with engine.connect() as conn:
        stored = conn.execute(sa.select(dossiers.c.updated_at).where(dossiers.c.code == CODE)).scalar_one()
    engine.dispose()
    local = stored.astimezone(site_zone(load_config(srv.config_path).site))
    page.goto(srv.url + "/code")
    tap_code(page, CODE.upper())
    started = time.monotonic()
    page.click("#submit-code")
    page.wait_for_selector("#status", timeout=15_000)
    waited = time.monotonic() - started
    assert emu.count(f"/dossiers/{CODE}") >= 1 and waited >= DEADLINE_S  # asked, and waited the deadline
    assert page.inner_text("#status-label") == "Đang xử lý"
    fresh = page.locator("#freshness")
    assert fresh.is_visible()
    assert fresh.inner_text().startswith(f"Cập nhật lúc {local:%H:%M} ngày {local:%d/%m}")
    assert page.locator("#source-offline").is_visible()
    assert "Chưa kết nối được hệ thống của tỉnh" in page.inner_text("#source-offline")
    assert "Traceback" not in page.inner_text("body")
    audit_and_shoot(page, "status-source-hangs")
