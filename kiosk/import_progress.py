"""What `kiosk import` shows while a large file goes in: a live line on a terminal, a summary at the end.

The importer calls `ImportProgress.row(rows, errors)` for every row it reads (its only hook); this
module decides what to show. The live line (rows, rate, errors, rewritten in place) goes to stderr and
only when stderr is a terminal, so logs, pipes and `--json` output never see it; the summary line goes
to stderr always.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

REFRESH_S = 0.25  # how often the live line is rewritten


def _rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f} rows/s" if seconds > 0 else "- rows/s"


class ImportProgress:
    def __init__(self, name: str, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic):
        self.name = name
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty()
        self._clock = clock
        self._start = clock()
        self._next = self._start + REFRESH_S
        self._width = 0
        self.rows = 0
        self.errors = 0

    def row(self, rows: int, errors: int) -> None:
        """Called for every row read: `rows` so far (data rows, header not counted), `errors` so far."""
        self.rows, self.errors = rows, errors
        if self.live:
            now = self._clock()
            if now >= self._next:
                self._next = now + REFRESH_S
                self._show(f"{self.name}: {rows:,} rows, {_rate(rows, now - self._start)}, {errors:,} errors")

    def _show(self, text: str) -> None:
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)

    def finish(self, errors: int | None = None, dry_run: bool = False) -> None:
        """The summary: rows read, time, rate and errors; replaces the live line on a terminal."""
        if errors is not None:
            self.errors = errors
        seconds = self._clock() - self._start
        text = (f"{self.name}: {self.rows:,} rows read in {seconds:.1f} s ({_rate(self.rows, seconds)}), "
                f"{self.errors:,} with errors" + (" (dry run)" if dry_run else ""))
        if self.live:
            self._show(text)
            self.stream.write("\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
