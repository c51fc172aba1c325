"""Helpers for the kiosk screen tests: a real gunicorn server for a whole module, seeded through the
REST ingest API, and in-browser checks of layout, text size, touch targets and contrast."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Iterator
from zoneinfo import ZoneInfo

from conftest import ARTIFACTS, TOKEN, _free_port, write_config_file

SIZES = [(800, 480), (1280, 800), (1080, 1920)]
SCREENS_DIR = ARTIFACTS / "screens"
ALL_WEEK = [{"days": [0, 1, 2, 3, 4, 5, 6], "open": "00:00:00", "close": "00:00:00"}]


def today_vn() -> date:
    return datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()


def sample_dossiers() -> list[dict[str, Any]]:
    t = today_vn()
    return [
        {"code": "000.00.21.H42-251125-0001", "secret": "ABC234", "procedure": "Đăng ký khai sinh", "field": "Hộ tịch",
         "applicant_name": "Nguyễn Văn Hùng", "phone": "0912345678", "status": "processing",
         "appointment_date": (t + timedelta(days=5)).isoformat(), "received_at": f"{t.isoformat()}T08:15:00+07:00"},
        {"code": "000.00.21.H42-251120-0002", "secret": "XYZ789",
         "procedure": "Cấp đổi Giấy chứng nhận quyền sử dụng đất",
         "field": "Đất đai", "applicant_name": "Trần Thị Lan", "phone": None, "status": "processing",
         "appointment_date": (t - timedelta(days=3)).isoformat()},
        {"code": "000.00.21.H42-251101-0003", "secret": "RDY456", "procedure": "Đăng ký kết hôn", "field": "Hộ tịch",
         "applicant_name": "Lê Minh Tuấn", "phone": "0987654321", "status": "releasing",
         "appointment_date": (t - timedelta(days=1)).isoformat()},
        {"code": "000.00.21.H42-251110-0004", "secret": "DOC777", "procedure":
         "Xác nhận hộ gia đình làm nông nghiệp có mức sống trung bình", "field": "Lao động",
         "applicant_name": "Phạm Thu Hằng", "phone": None, "status": "waiting",
         "appointment_date": (t + timedelta(days=2)).isoformat()},
        {"code": "000.00.21.H42-251125-0666", "secret": "EVIL66",
         "procedure": '<img src=x onerror="window.__pwned=1">Đăng ký khai sinh',
         "field": "<b>x</b>", "applicant_name": '<script>window.__pwned=1</script> Lan', "phone": "0912000111",
         "status": "processing", "appointment_date": (t + timedelta(days=1)).isoformat()},
    ]


class KioskServer:
    """`kiosk serve` under real gunicorn, started once for a test module."""

    def __init__(self, root: Path, sections: dict[str, Any], opening_hours: list[dict[str, Any]],
                 workers: int = 1) -> None:
        self.port = _free_port()
        self.data_dir = root / "data"
        self.socket_path = root / "scan.sock"
        cfg: dict[str, Any] = {"paths": {"data_dir": str(self.data_dir)}, "ingest": {"api_token": TOKEN},
                               "scanner": {"socket": str(self.socket_path)}}
        for k, v in sections.items():
            cfg[k] = {**cfg.get(k, {}), **v}
        self.config_path = write_config_file(root / "config.toml", cfg)
        with self.config_path.open("a", encoding="utf-8") as fh:
            for p in opening_hours:
                fh.write(f'\n[[site.opening_hours]]\ndays = {json.dumps(p["days"])}\n'
                         f'open = {p["open"]}\nclose = {p["close"]}\n')
        self.log_path = root / "server.log"
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kiosk.cli", "--config", str(self.config_path), "serve",
             "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers)],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kiosk serve exited: {self.log_path.read_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("kiosk serve did not start in 30 s")

    def ingest(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        req = urllib.request.Request(f"{self.url}/api/v1/dossiers", data=json.dumps({"dossiers": records}).encode(),
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)

    def engine(self):
        from motcua.config import load_config
        from motcua.db import make_engine

        return make_engine(load_config(self.config_path), migrate_now=False)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(5)
        self._log.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def serve(root: Path, sections: dict[str, Any], opening_hours: list[dict[str, Any]] = ALL_WEEK,
          workers: int = 1) -> Iterator[KioskServer]:
    server = KioskServer(root, sections, opening_hours, workers)
    try:
        yield server
    finally:
        server.stop()


# In-page audit: everything visible fits in the viewport, text >= 24 px, targets >= 60 px, AA contrast.
AUDIT_JS = r"""
() => {
  const W = innerWidth, H = innerHeight, out = {scrollW: document.documentElement.scrollWidth,
    scrollH: document.documentElement.scrollHeight, W, H, small: [], tiny: [], contrast: [], outside: [], overflow: []};
  const parse = c => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null;
    const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const bgOf = el => { for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor);
    if (c && c.a > 0.5) return c; } return {r: 255, g: 255, b: 255, a: 1}; };
  const label = el => (el.id ? '#' + el.id : el.tagName.toLowerCase() + '.' + el.className)
    + ' "' + (el.textContent || '').trim().slice(0, 30) + '"';
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('.sprite') || el.closest('[hidden]')) continue;
    const r = el.getBoundingClientRect(), st = getComputedStyle(el);
    if (r.width === 0 || r.height === 0 || st.visibility === 'hidden' || st.display === 'none') continue;
    const ownText = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (ownText) {
      if (parseFloat(st.fontSize) < 24) out.small.push(label(el) + ' ' + st.fontSize);
      const fg = parse(st.color), bg = bgOf(el);
      const L1 = lum(fg), L2 = lum(bg), ratio = (Math.max(L1, L2) + 0.05) / (Math.min(L1, L2) + 0.05);
      if (ratio < 4.5) out.contrast.push(label(el) + ' ' + ratio.toFixed(2));
    }
    if (el.children.length && el.clientHeight > 0 && st.overflowY !== 'hidden'
        && el.scrollHeight > el.clientHeight + 6 && !el.matches('html, body'))
      out.overflow.push(label(el) + ' ' + el.scrollHeight + '>' + el.clientHeight);
    if (r.bottom > H + 1 || r.right > W + 1 || r.left < -1 || r.top < -1) out.outside.push(label(el));
    if (el.matches('a, button, .field') && !el.closest('.field') || el.matches('.field')) {
      if (r.height < 59.5 || r.width < 59.5) out.tiny.push(label(el) + ' '
        + Math.round(r.width) + 'x' + Math.round(r.height));
    }
  }
  return out;
}
"""


STYLES_LOADED_JS = """
() => { const links = [...document.querySelectorAll('link[rel=stylesheet]')];
        return links.length > 0 && links.every(l => l.sheet !== null); }
"""


def wait_for_styles(page: Any, timeout_s: float = 15.0) -> None:
    """A selector can appear before the stylesheet has arrived (a loaded machine, a page navigated
    to by script): measure only the styled page. Polled from Python: the CSP forbids eval."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(STYLES_LOADED_JS):
        assert time.monotonic() < deadline, "stylesheets did not load"
        time.sleep(0.05)


def audit_and_shoot(page: Any, name: str) -> None:
    """At each kiosk size: check the screen fits and reads well, and save a screenshot."""
    SCREENS_DIR.mkdir(parents=True, exist_ok=True)
    wait_for_styles(page)
    problems = []
    for w, h in SIZES:
        page.set_viewport_size({"width": w, "height": h})
        page.evaluate("document.fonts.ready")
        result = page.evaluate(AUDIT_JS)
        page.screenshot(path=str(SCREENS_DIR / f"{name}-{w}x{h}.png"))
        if result["scrollW"] > w or result["scrollH"] > h:
            problems.append(f"{w}x{h}: scrolls ({result['scrollW']}x{result['scrollH']})")
        for key in ("small", "tiny", "contrast", "outside", "overflow"):
            if result[key]:
                problems.append(f"{w}x{h} {key}: {result[key][:6]}")
    page.set_viewport_size({"width": 1280, "height": 800})
    assert not problems, f"screen {name}: " + "; ".join(problems)
