"""Legibility of printed Vietnamese (issue 14): OCR character accuracy of a status slip and a queue
ticket as the printer receives them, at 576 and 384 dots. Run by hand, against any checkout:

    PYTHONPATH=. .venv/bin/python bench/bench_ocr.py

Each document is rendered (kiosk/printing/render.py), encoded to ESC/POS and decoded back (what the
paper shows), read by `tesseract -l vie --psm 6` (Debian's tesseract-ocr-vie), and every drawn line
that holds Vietnamese letters (any non-ASCII character, the same rule for every checkout) is compared
with the OCR line closest to it: accuracy = 1 - sum(Levenshtein) / sum(length). The same cases as
tests/test_print_ocr.py; this script also runs on older checkouts (it records the drawn lines itself).
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from datetime import date, datetime, timezone
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from kiosk.printing import render
from kiosk.printing.content import slip_content, ticket_content
from kiosk.printing.decode import pages
from kiosk.printing.encode import encode_image
from motcua.config import Config

NOW = datetime(2025, 11, 17, 3, 0, tzinfo=timezone.utc)
SLIP = {"code": "000.00.21.H42-251101-0003", "status": "result_ready", "procedure": "Đăng ký kết hôn",
        "appointment_date": date(2025, 11, 16)}
SLIP_DOCS = {"code": "000.00.21.H42-251110-0004", "status": "more_documents",
             "procedure": "Xác nhận hộ gia đình làm nông nghiệp có mức sống trung bình",
             "appointment_date": date(2025, 11, 1)}
TICKET = {"label": "A002", "service_code": "HT", "service_name_vi": "Hộ tịch – Chứng thực",
          "service_name_en": "Civil status – Certification", "waiting_ahead": 1, "estimated_wait_min": 5,
          "issued_at": "2025-11-17T03:00:00+00:00"}

drawn: list[str] = []
_original_line = render.Layout._line


def _recording_line(self, line, *args, **kwargs):  # every checkout draws each text line through _line
    drawn.append(line)
    return _original_line(self, line, *args, **kwargs)


render.Layout._line = _recording_line


def _norm(text: str) -> str:
    return " ".join(text.replace("·", "-").replace("–", "-").split())


def measure(image, width: int) -> dict[str, object]:
    paper = pages(encode_image(image, width))[0].image
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "paper.png"
        paper.save(path)
        out = subprocess.run(["tesseract", str(path), "-", "-l", "vie", "--psm", "6"], capture_output=True,
                             text=True, check=True).stdout
    read = [_norm(x) for x in out.splitlines() if x.strip()]
    total = errors = 0
    wrong = []
    for line in drawn:
        if line.isascii():
            continue
        want = _norm(line)
        best = min(read, key=lambda got: Levenshtein.distance(want, got), default="")
        dist = min(Levenshtein.distance(want, best), len(want))
        total, errors = total + len(want), errors + dist
        if dist:
            wrong.append(f"{want!r} read {best!r}")
    return {"accuracy": round(1 - errors / total, 4), "characters": total, "wrong_lines": wrong}


def main() -> int:
    cfg = Config()
    results = {}
    for width in (576, 384):
        for name, make in (("slip_result_ready", lambda w: render.render_slip(slip_content(cfg, SLIP, NOW), w)),
                           ("slip_more_documents", lambda w: render.render_slip(slip_content(cfg, SLIP_DOCS, NOW), w)),
                           ("ticket", lambda w: render.render_ticket(ticket_content(cfg, TICKET), w))):
            drawn.clear()
            results[f"{name}@{width}"] = measure(make(width), width)
    json.dump(results, sys.stdout, ensure_ascii=False, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
