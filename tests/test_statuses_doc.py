"""docs/statuses.md describes the vocabulary in motcua/statuses.py and the default source map."""
from __future__ import annotations

import re
from pathlib import Path

from motcua.config import DEFAULT_STATUS_MAP
from motcua.statuses import STATUSES

DOC = Path(__file__).resolve().parents[1] / "docs" / "statuses.md"


def _rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("| ") and not line.startswith("|--")]


def test_statuses_page_lists_every_status_with_its_labels_and_flags():
    rows = {r[0].strip("`"): r for r in _rows(DOC.read_text()) if len(r) == 5 and r[0].startswith("`")}
    assert set(rows) == set(STATUSES)
    for code, s in STATUSES.items():
        _, vi, en, notify, final = rows[code]
        assert (vi, en) == (s.label_vi, s.label_en)
        assert (notify == "yes", final == "yes") == (s.notify, s.final)


def test_statuses_page_shows_the_default_source_map():
    mapped = {}
    for row in _rows(DOC.read_text()):
        if len(row) == 2 and row[1].startswith("`"):
            for src in re.split(r",\s*", row[0]):
                mapped[src] = row[1].strip("`")
    assert mapped == DEFAULT_STATUS_MAP
