"""`kiosk import FILE`: CSV and XLSX exports from the provincial system.

The file is streamed (memory does not grow with it). Columns are found by the header names in
`[import] columns`. Rows are parsed one by one (a bad row is reported and skipped) and applied in
batches of `[import] batch_rows`, one transaction each; should the database refuse a batch, it is
replayed row by row on savepoints so that a bad row is never half-written and never stops the good
ones. `--dry-run` parses and applies everything, then rolls back.
"""
from __future__ import annotations

import csv
import json
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import click
import sqlalchemy as sa

from kiosk.store.ingest import DossierEvent, EventError, IngestReport, Parser, apply_event, apply_events, record_run
from motcua.config import Config
from motcua.timeutil import utcnow


class ImportFileError(Exception):
    """The file as a whole cannot be read (not the fault of a single row)."""


@dataclass
class RowError:
    row: int  # 1-based line/row number in the file, header = 1
    code: str | None
    field: str
    error: str


def _norm(header: Any) -> str:
    return unicodedata.normalize("NFC", str(header or "")).strip().lower()


def _rows_csv(path: Path, delimiter: str) -> Iterator[list[str]]:
    try:
        fh = open(path, newline="", encoding="utf-8-sig")  # utf-8-sig also reads files without a BOM
    except OSError as exc:
        raise ImportFileError(f"cannot open {path}: {exc.strerror}") from None
    with fh:
        try:
            sample = fh.read(64 * 1024)
        except UnicodeDecodeError:
            raise ImportFileError(f"{path} is not UTF-8 text; export it as CSV UTF-8") from None
        fh.seek(0)
        if not delimiter:
            try:
                delimiter = csv.Sniffer().sniff(sample.split("\n", 1)[0], delimiters=",;\t").delimiter
            except csv.Error:
                delimiter = ","
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            yield from reader
        except UnicodeDecodeError as exc:
            raise ImportFileError(f"{path} is not UTF-8 text past byte {exc.start}; export it as CSV UTF-8") from None
        except csv.Error as exc:
            raise ImportFileError(f"{path}: broken CSV at line {reader.line_num}: {exc}") from None


def _rows_xlsx(path: Path) -> Iterator[list[Any]]:
    from zipfile import BadZipFile

    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ImportFileError(f"{path} is not a readable XLSX workbook: {exc}") from None
    try:
        for row in wb.worksheets[0].iter_rows(values_only=True):
            yield list(row)
    finally:
        wb.close()


def read_rows(path: Path, cfg: Config) -> Iterator[list[Any]]:
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _rows_xlsx(path)
    if suffix in (".csv", ".txt", ".tsv"):
        return _rows_csv(path, cfg.import_.csv_delimiter)
    raise ImportFileError(f"{path.name}: unsupported file type {suffix or '(none)'}; use .csv or .xlsx")


def records(path: Path, cfg: Config) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (row number, record keyed by dossier field) for each non-empty data row."""
    rows = read_rows(path, cfg)
    header = next(rows, None)
    if header is None:
        raise ImportFileError(f"{path.name} is empty")
    index = {_norm(h): i for i, h in enumerate(header)}
    mapping: dict[str, int] = {}
    for fld, column in cfg.import_.columns.items():
        pos = index.get(_norm(column))
        if pos is not None:
            mapping[fld] = pos
    missing = [cfg.import_.columns[f] for f in ("code", "status") if f not in mapping]
    if missing:
        raise ImportFileError(
            f"{path.name}: header has no column {', '.join(repr(m) for m in missing)} "
            f"(set [import] columns in the configuration)"
        )
    for number, row in enumerate(rows, start=2):
        if not any(c not in (None, "") for c in row):
            continue
        rec = {}
        for fld, pos in mapping.items():
            value = row[pos] if pos < len(row) else None
            if isinstance(value, str):
                value = unicodedata.normalize("NFC", value)
            rec[fld] = value
        yield number, rec


def import_file(engine: sa.Engine, cfg: Config, path: Path, *, dry_run: bool = False,
                on_row: Callable[[int, int], None] | None = None) -> tuple[IngestReport, list[RowError]]:
    """Import one file; `on_row(rows_read, errors)` is called for every row (kiosk/import_progress.py)."""
    parser = Parser.from_config(cfg)
    report = IngestReport()
    errors: list[RowError] = []
    started = utcnow()
    batch = max(1, cfg.import_.batch_rows)
    conn = engine.connect()

    def flush(pending: list[tuple[int, DossierEvent]]) -> None:
        try:
            with conn.begin_nested():
                outcomes = apply_events(conn, [ev for _, ev in pending], via="import", now=started)
        except sa.exc.DBAPIError:
            # Find the row the database refused; the others still go in, each whole or not at all.
            outcomes = []
            for number, ev in pending:
                try:
                    with conn.begin_nested():
                        outcomes.append(apply_event(conn, ev, via="import", now=started))
                except sa.exc.DBAPIError as exc:
                    errors.append(RowError(number, ev.code, "(database)", str(exc.orig)[:200]))
        for outcome in outcomes:
            report.count(outcome)

    try:
        tx = conn.begin()
        pending: list[tuple[int, DossierEvent]] = []
        for number, rec in records(path, cfg):
            if on_row:
                on_row(number - 1, len(errors))
            code = rec.get("code")
            try:
                pending.append((number, parser.parse(rec)))
            except EventError as exc:
                errors.append(RowError(number, str(code)[:100] if code else None, exc.field, exc.message))
                continue
            if len(pending) >= batch:
                flush(pending)
                pending = []
                if not dry_run:
                    tx.commit()
                    tx = conn.begin()
        flush(pending)
        errors.sort(key=lambda e: e.row)
        report.errors = [e.__dict__ for e in errors]
        if dry_run:
            tx.rollback()
        else:
            record_run(conn, "import", path.name, report, started)
            tx.commit()
    except BaseException:
        if conn.in_transaction():
            conn.rollback()
        raise
    finally:
        conn.close()
    return report, errors


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check and count everything, write nothing.")
@click.option("--errors", "errors_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the per-row error report as CSV here.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_obj
def import_command(obj, file: Path, dry_run: bool, errors_path: Path | None, as_json: bool) -> None:
    """Import dossiers from a CSV (UTF-8, with or without BOM) or XLSX export."""
    if not file.exists():
        raise click.ClickException(f"{file} does not exist")
    from kiosk.import_progress import ImportProgress

    progress = ImportProgress(file.name)
    try:
        report, errors = import_file(obj.engine, obj.config, file, dry_run=dry_run, on_row=progress.row)
    except ImportFileError as exc:
        raise click.ClickException(str(exc)) from None
    progress.finish(len(errors), dry_run)
    summary = {k: v for k, v in report.as_dict().items() if k != "errors"} | {"errors": len(errors), "dry_run": dry_run}
    if as_json:
        click.echo(json.dumps(summary | {"error_rows": [e.__dict__ for e in errors[:1000]]}, ensure_ascii=False))
    else:
        verb = "would be" if dry_run else "were"
        click.echo(
            f"{file.name}: {report.created} created, {report.updated} updated, {report.unchanged} unchanged, "
            f"{report.stale} stale (older than what is stored), {len(errors)} row(s) with errors {verb} skipped"
            + (" (dry run: nothing written)" if dry_run else "")
        )
        for e in errors[:20]:
            click.echo(f"  row {e.row} ({e.code or 'no code'}): {e.field}: {e.error}", err=True)
        if len(errors) > 20:
            click.echo(f"  ... {len(errors) - 20} more; use --errors FILE for the full report", err=True)
    if errors_path:
        with open(errors_path, "w", newline="", encoding="utf-8-sig") as fh:
            w = csv.writer(fh)
            w.writerow(["row", "code", "field", "error"])
            for e in errors:
                w.writerow([e.row, e.code or "", e.field, e.error])
    if errors:
        sys.exit(2)
