"""Read printed Vietnamese back: the slip or ticket raster as the printer receives it (ESC/POS bytes
decoded again), OCR by Debian's tesseract with its Vietnamese model, scored by character accuracy.

Used by tests/test_print_ocr.py (>= 98% required) and bench/bench_ocr.py (the figures, before/after).
"""
from __future__ import annotations

import subprocess
import tempfile
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from rapidfuzz.distance import Levenshtein

from kiosk.printing import render
from kiosk.printing.content import slip_content, ticket_content
from kiosk.printing.decode import pages
from kiosk.printing.encode import encode_image
from motcua.config import Config

NOW = datetime(2025, 11, 17, 3, 0, tzinfo=timezone.utc)
SLIPS: dict[str, dict[str, Any]] = {
    "more_documents_past_date": {
        "code": "000.00.21.H42-251110-0004", "status": "more_documents",
        "procedure": "Xác nhận hộ gia đình làm nông nghiệp có mức sống trung bình",
        "appointment_date": date(2025, 11, 1)},
    "processing_overdue": {
        "code": "000.00.21.H42-251020-0012", "status": "processing",
        "procedure": "Cấp đổi Giấy chứng nhận quyền sử dụng đất, quyền sở hữu nhà ở",
        "appointment_date": date(2025, 11, 3)},
    "result_ready": {
        "code": "000.00.21.H42-251101-0003", "status": "result_ready", "procedure": "Đăng ký kết hôn",
        "appointment_date": date(2025, 11, 16)},
}
TICKET = {"label": "A002", "service_code": "HT", "service_name_vi": "Hộ tịch – Chứng thực",
          "service_name_en": "Civil status – Certification", "waiting_ahead": 1, "estimated_wait_min": 5,
          "issued_at": "2025-11-17T03:00:00+00:00"}


def _norm(text: str) -> str:
    # The middle dot and the en dash are read as '-' by any OCR: punctuation of layout, not letters.
    return " ".join(text.replace("·", "-").replace("–", "-").split())


def slip_layout(cfg: Config, case: str, width: int) -> Any:
    return render.slip_layout(slip_content(cfg, SLIPS[case], NOW), width)


def ticket_layout(cfg: Config, width: int, **extra: Any) -> Any:
    return render.ticket_layout(ticket_content(cfg, {**TICKET, **extra}), width)


def paper_image(image: Any, width: int) -> Any:
    """The raster the printer would put on paper: encoded to ESC/POS and decoded again."""
    return pages(encode_image(image, width))[0].image


def ocr(image: Any) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "paper.png"
        image.save(path)
        out = subprocess.run(["tesseract", str(path), "-", "-l", "vie", "--psm", "6"], capture_output=True,
                             text=True, check=True, timeout=120).stdout
    return [_norm(line) for line in out.splitlines() if line.strip()]


def accuracy(lines: list[tuple[str, bool]], read: list[str]) -> tuple[float, list[tuple[str, str]]]:
    """Character accuracy of the Vietnamese lines (1 - Levenshtein / length, summed over lines), each
    compared with the OCR line closest to it; and the lines that were not read exactly."""
    total = errors = 0
    wrong = []
    for line, english in lines:
        if english:
            continue
        want = _norm(line)
        best = min(read, key=lambda got: Levenshtein.distance(want, got), default="")
        dist = min(Levenshtein.distance(want, best), len(want))
        total, errors = total + len(want), errors + dist
        if dist:
            wrong.append((want, best))
    return (1 - errors / total if total else 0.0), wrong


def layout_accuracy(layout: Any, width: int) -> tuple[float, list[tuple[str, str]]]:
    return accuracy(layout.lines, ocr(paper_image(layout.render(), width)))
