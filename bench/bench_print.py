"""Time to render and encode a queue ticket and a status slip, and their ESC/POS byte sizes.

Targets (issue 5): at most 150 ms each to render + encode on this machine; a ticket at 576 dots
at most 40 KB. Run: .venv/bin/python bench/bench_print.py [--rounds N]
"""
from __future__ import annotations

import argparse
import functools
import importlib
import statistics
import time
from datetime import date, datetime, timedelta, timezone

from kiosk.printing.content import slip_content, ticket_content
from kiosk.printing.encode import encode_image
from kiosk.printing.render import render_slip, render_ticket
from motcua.config import Config

TICKET = {
    "label": "A128", "number": 128, "service_code": "HT", "service_name_vi": "Hộ tịch - Chứng thực",
    "service_name_en": "Civil status - Certification", "waiting_ahead": 14, "estimated_wait_min": 35,
    "issued_at": datetime(2025, 12, 1, 1, 15, tzinfo=timezone.utc).isoformat(),
}
DOSSIER = {
    "code": "000.00.21.H42-251125-0042", "status": "more_documents",
    "procedure": "Cấp Giấy xác nhận tình trạng hôn nhân", "appointment_date": date.today() + timedelta(days=4),
}


def measure(fn, rounds: int) -> tuple[float, float, float]:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), max(times), times[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=50)
    args = ap.parse_args()
    cfg = Config()
    t0 = time.perf_counter()
    importlib.import_module("escpos.printer")  # first import cost, reported apart
    import_ms = (time.perf_counter() - t0) * 1000
    ticket = ticket_content(cfg, TICKET)
    slip = slip_content(cfg, DOSSIER)
    print(f"python-escpos import (once per worker process): {import_ms:.0f} ms")
    print(f"{'document':<8} {'dots':>4} {'render ms':>10} {'encode ms':>10} {'total med':>10} {'total max':>10} "
          f"{'first':>7} {'bytes':>8} {'raw raster':>10} {'height':>6}")
    for name, renderer, content in (("ticket", render_ticket, ticket), ("slip", render_slip, slip)):
        for dots in (576, 384):
            render_med, _, _ = measure(functools.partial(renderer, content, dots), args.rounds)
            image = renderer(content, dots)
            encode_med, _, _ = measure(functools.partial(encode_image, image, dots), args.rounds)

            def render_and_encode(renderer=renderer, content=content, dots=dots):
                return encode_image(renderer(content, dots), dots)

            total_med, total_max, first = measure(render_and_encode, args.rounds)
            size = len(encode_image(image, dots))
            raw = (dots // 8) * image.height
            print(f"{name:<8} {dots:>4} {render_med:>10.1f} {encode_med:>10.1f} {total_med:>10.1f} {total_max:>10.1f} "
                  f"{first:>7.1f} {size:>8} {raw:>10} {image.height:>6}")
    print("targets: total <= 150 ms each; ticket at 576 dots <= 40960 bytes")


if __name__ == "__main__":
    main()
