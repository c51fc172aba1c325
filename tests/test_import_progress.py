"""`kiosk import` on a terminal: a live line with rows, rate and errors, then a summary; off a terminal
only the summary, and `--json` output is untouched."""
from __future__ import annotations

import io
import json

from click.testing import CliRunner

from kiosk.cli import cli
from kiosk.import_progress import ImportProgress
from tests.conftest import write_config_file
from tests.test_import import HEADER


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _big_csv(path, rows: int, bad_every: int = 0):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for n in range(1, rows + 1):
            status = "lost-in-space" if bad_every and n % bad_every == 0 else "processing"
            w.writerow([f"H42-{n:06d}", "", "Đăng ký khai sinh", "Hộ tịch", "Nguyễn Văn A", "", status,
                        "", "", ""])
    return path


def test_a_terminal_gets_a_live_line_with_rows_rate_and_errors_then_the_summary():
    now = [0.0]
    term = _Terminal()
    progress = ImportProgress("export.csv", stream=term, clock=lambda: now[0])
    for n in range(1, 2001):
        now[0] += 0.001  # 1000 rows a second
        progress.row(n, n // 100)
    progress.finish(20)
    lines = term.getvalue().split("\r")
    live = [line for line in lines if "rows/s," in line]
    assert len(live) >= 6  # every 0.25 s over 2 s
    assert "export.csv: 250 rows, 1,000 rows/s, 2 errors" in live[0]
    assert term.getvalue().endswith("export.csv: 2,000 rows read in 2.0 s (1,000 rows/s), 20 with errors\n")


def test_off_a_terminal_only_the_summary_is_written():
    out = io.StringIO()
    progress = ImportProgress("export.csv", stream=out, clock=lambda: 5.0)
    for n in range(1, 1001):
        progress.row(n, 0)
    progress.finish(0, dry_run=True)
    assert "\r" not in out.getvalue()
    assert out.getvalue() == "export.csv: 1,000 rows read in 0.0 s (- rows/s), 0 with errors (dry run)\n"


def test_import_prints_the_summary_on_stderr_and_leaves_json_alone(tmp_path):
    path = _big_csv(tmp_path / "big.csv", 3000, bad_every=500)
    cfg = write_config_file(tmp_path / "cfg.toml", {"paths": {"data_dir": str(tmp_path / "data")}})
    result = CliRunner().invoke(cli, ["--config", str(cfg), "import", "--json", str(path)])
    assert result.exit_code == 2  # rows with errors
    summary = json.loads(result.stdout)
    assert summary["created"] == 2994 and summary["errors"] == 6
    assert "big.csv: 3,000 rows read in" in result.stderr and "6 with errors" in result.stderr
    assert "\r" not in result.stderr  # not a terminal: no live line
