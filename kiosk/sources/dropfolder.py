"""A watched drop folder: a CSV/XLSX export placed there (a shared folder, a USB stick) is imported
once through the existing importer (`kiosk.importer.import_file`), then moved to `archive/` with its
per-row error report written beside it (`<name>.errors.csv`).

A file is read only once it has not changed for `settle_s` (a copy still being written is left
alone). Import is idempotent, so a crash between import and archive re-imports with no effect.
Names starting with '.' or '~$' (Office lock files) are ignored.
"""
from __future__ import annotations

import csv
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from kiosk.sources.base import ErrorKind, Source, SourceError
from motcua.config import Config

log = logging.getLogger(__name__)

SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xlsm")


@dataclass
class FolderImport:
    name: str
    archived: Path
    created: int = 0
    updated: int = 0
    errors: int = 0
    failed: str | None = None  # the whole file could not be read


class DropFolderSource(Source):
    kind = "dropfolder"
    supports_fetch = False  # files go through the importer, which maps statuses itself

    def __init__(self, cfg: Config, transport: object = None):  # no network: transport is unused
        self.cfg = cfg
        self.folder = cfg.source_.dropfolder.folder or (cfg.paths.data_dir / "inbox")
        self.settle_s = cfg.source_.dropfolder.settle_s

    def pending(self, now: float | None = None) -> list[Path]:
        now = time.time() if now is None else now
        try:
            entries = sorted(self.folder.iterdir())
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise SourceError(ErrorKind.UNREACHABLE, f"cannot list {self.folder}: {exc.strerror}") from None
        out = []
        for p in entries:
            if p.name.startswith((".", "~$")) or p.suffix.lower() not in SUFFIXES or not p.is_file():
                continue
            if now - p.stat().st_mtime >= self.settle_s:
                out.append(p)
        return out

    def import_pending(self, engine: sa.Engine, now: float | None = None) -> list[FolderImport]:
        from kiosk.importer import ImportAborted, ImportFileError, import_file, report_cell

        done = []
        for path in self.pending(now):
            archive = self.folder / "archive"
            archive.mkdir(exist_ok=True)
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            target = archive / f"{stamp}-{path.name}"
            result = FolderImport(path.name, target)
            rows: list[list[object]] = []
            try:
                report, errors = import_file(engine, self.cfg, path)
                result.created, result.updated, result.errors = report.created, report.updated, errors.total
                rows = [[e.row, report_cell(e.code), e.field, report_cell(e.error)] for e in errors]
            except (ImportFileError, ImportAborted) as exc:
                result.failed = str(exc)
                rows = [["", "", "(file)", report_cell(str(exc))]]
            os.replace(path, target)
            if rows:
                with open(target.with_name(target.name + ".errors.csv"), "w", newline="", encoding="utf-8-sig") as fh:
                    w = csv.writer(fh)
                    w.writerow(["row", "code", "field", "error"])
                    w.writerows(rows)
            log.info("drop folder: %s imported (%d created, %d updated, %d row errors%s), archived as %s",
                     path.name, result.created, result.updated, result.errors,
                     f"; file refused: {result.failed}" if result.failed else "", target.name)
            done.append(result)
        return done

    def check(self) -> str:
        if not self.folder.is_dir():
            raise SourceError(ErrorKind.UNREACHABLE, f"the drop folder {self.folder} does not exist")
        if not os.access(self.folder, os.R_OK | os.W_OK | os.X_OK):
            raise SourceError(ErrorKind.AUTH, f"this user cannot read and move files in {self.folder}")
        return f"{self.folder} is readable and writable ({len(self.pending())} file(s) waiting)"
