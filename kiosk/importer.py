"""`kiosk import FILE`: CSV and XLSX exports from the provincial system.

The file is streamed (memory does not grow with it). Columns are found by the header names in
`[import] columns`. Rows are parsed one by one (a bad row is reported and skipped) and applied in
batches of `[import] batch_rows`, one transaction each; should the database refuse a batch, it is
replayed row by row on savepoints so that a bad row is never half-written and never stops the good
ones. `--dry-run` parses and applies everything, then rolls back.
"""
from __future__ import annotations

import codecs
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
        head = path.open("rb").read(64 * 1024)
        # surrogateescape: a stray non-UTF-8 byte further down is one row's error, not the file's.
        fh = open(path, newline="", encoding="utf-8-sig", errors="surrogateescape")
    except OSError as exc:
        raise ImportFileError(f"{path} cannot be opened: {exc.strerror}") from None
    with fh:
        try:  # a file that is not UTF-8 from the start is refused whole, before anything is written
            codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < 64 * 1024)
        except UnicodeDecodeError:
            raise ImportFileError(f"{path} is not UTF-8 text; export it as CSV UTF-8") from None
        sample = fh.read(64 * 1024)
        fh.seek(0)
        if not delimiter:
            try:
                delimiter = csv.Sniffer().sniff(sample.split("\n", 1)[0], delimiters=",;\t").delimiter
            except csv.Error:
                delimiter = ","
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            yield from reader
        except csv.Error as exc:
            raise ImportFileError(f"{path}: broken CSV at line {reader.line_num}: {exc}") from None


def check_xlsx_bounds(path: Path, cfg: Config) -> None:
    """Refuse an XLSX whose members would unzip past the configured bounds, before openpyxl opens it
    (its read-only mode still loads the whole shared-strings table)."""
    from zipfile import BadZipFile, ZipFile

    limits = cfg.import_
    try:
        with ZipFile(path) as zf:
            members = zf.infolist()
    except (BadZipFile, OSError) as exc:
        raise ImportFileError(f"{path} is not a readable XLSX workbook: {exc}") from None
    total = sum(m.file_size for m in members)
    if total > limits.max_xlsx_mb * 2**20:
        raise ImportFileError(f"{path.name} unzips to {total / 2**20:.0f} MB, more than [import] max_xlsx_mb = "
                              f"{limits.max_xlsx_mb}; export it as CSV")
    strings = sum(m.file_size for m in members if m.filename.lower().endswith("sharedstrings.xml"))
    if strings > limits.max_shared_strings_mb * 2**20:
        raise ImportFileError(f"{path.name}: its shared-strings table is {strings / 2**20:.0f} MB, more than "
                              f"[import] max_shared_strings_mb = {limits.max_shared_strings_mb}; export it as CSV")


def _rows_xlsx(path: Path, cfg: Config) -> Iterator[list[Any]]:
    from zipfile import BadZipFile

    from openpyxl import load_workbook

    check_xlsx_bounds(path, cfg)
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ImportFileError(f"{path} is not a readable XLSX workbook: {exc}") from None
    try:
        # max_col: a single cell at column XFD would otherwise pad every row with 16,384 Nones.
        for row in wb.worksheets[0].iter_rows(values_only=True, max_col=cfg.import_.max_columns):
            yield list(row)
    finally:
        wb.close()


def read_rows(path: Path, cfg: Config) -> Iterator[list[Any]]:
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _rows_xlsx(path, cfg)
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
    cells, max_cells = 0, cfg.import_.max_cells
    for number, row in enumerate(rows, start=2):
        cells += len(row)
        if cells > max_cells:
            raise ImportFileError(f"{path.name}: more than [import] max_cells = {max_cells} cells (at row {number})")
        if not any(c not in (None, "") for c in row):
            continue
        rec = {}
        for fld, pos in mapping.items():
            value = row[pos] if pos < len(row) else None
            if isinstance(value, str):
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError as exc:  # a byte the CSV reader kept as a surrogate
                    bad = ord(value[exc.start]) - 0xDC00
                    value = BadBytes(f"not UTF-8 text (byte 0x{bad:02X} in column {header[pos]!s:.40}); "
                                     f"export the file as CSV UTF-8")
                else:
                    value = unicodedata.normalize("NFC", value)
            rec[fld] = value
        yield number, rec


class BadBytes(str):
    """A cell that was not UTF-8: the row is reported with this message instead of being parsed."""


EXIT_ROW_ERRORS, EXIT_ABORTED = 2, 3  # 1: the file was refused whole (nothing written)
KEPT_ERRORS = 1000  # in memory for the summary; the --errors file gets every one
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def report_cell(value: Any) -> str:
    """A report cell a spreadsheet shows as text: OWASP's CSV-injection rule (a leading ' before = + - @
    tab or CR), so a dossier code like =HYPERLINK(...) never becomes a live formula for IT staff."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


class RowErrors(list):
    """The first KEPT_ERRORS row errors; `total` counts them all."""

    total = 0


class ErrorLog:
    """Row errors as they happen: counted, the first KEPT_ERRORS kept, all streamed to a CSV report."""

    def __init__(self, path: Path | None = None):
        self.count = 0
        self.first = RowErrors()
        self._fh = open(path, "w", newline="", encoding="utf-8-sig") if path else None
        self._writer = csv.writer(self._fh) if self._fh else None
        if self._writer:
            self._writer.writerow(["row", "code", "field", "error"])

    def add(self, error: RowError) -> None:
        self.count += 1
        self.first.total = self.count
        if len(self.first) < KEPT_ERRORS:
            self.first.append(error)
        if self._writer:
            self._writer.writerow([report_cell(v) for v in (error.row, error.code, error.field, error.error)])

    def close(self) -> None:
        if self._fh:
            self._fh.close()


class ImportAborted(Exception):
    """The import stopped part-way for a reason that is not one row's fault (database gone, a bug).
    The batches before `row` are committed and a run is recorded saying so."""

    def __init__(self, report: IngestReport, errors: ErrorLog, row: int, cause: BaseException):
        super().__init__(f"stopped at row {row}: {type(cause).__name__}: {cause}")
        self.report, self.errors, self.row, self.cause = report, errors, row, cause


def import_file(engine: sa.Engine, cfg: Config, path: Path, *, dry_run: bool = False,
                errors_path: Path | None = None,
                on_row: Callable[[int, int], None] | None = None) -> tuple[IngestReport, RowErrors]:
    """Import a file; returns the counts and the first KEPT_ERRORS row errors (`.total` counts them
    all; `errors_path` receives every one as it is found, so memory stays flat). `on_row(rows_read,
    errors)` is called for every row (kiosk/import_progress.py).

    Raises ImportFileError (nothing written) or ImportAborted (a run recorded up to where it stopped).
    """
    parser = Parser.from_config(cfg)
    report = IngestReport()
    log = ErrorLog(errors_path)
    started = utcnow()
    batch = max(1, cfg.import_.batch_rows)
    conn = engine.connect()
    number = 1

    def flush(pending: list[tuple[int, DossierEvent]]) -> None:
        try:
            with conn.begin_nested():
                outcomes = apply_events(conn, [ev for _, ev in pending], via="import", now=started)
        except sa.exc.DBAPIError:
            # Find the row the database refused; the others still go in, each whole or not at all.
            outcomes = []
            for row_no, ev in pending:
                try:
                    with conn.begin_nested():
                        outcomes.append(apply_event(conn, ev, via="import", now=started))
                except sa.exc.DBAPIError as exc:
                    log.add(RowError(row_no, ev.code, "(database)", str(exc.orig)[:200]))
        for outcome in outcomes:
            report.count(outcome)

    try:
        tx = conn.begin()
        pending: list[tuple[int, DossierEvent]] = []
        for number, rec in records(path, cfg):
            if on_row:
                on_row(number - 1, log.count)
            code = rec.get("code")
            shown_code = str(code)[:100] if code else None
            bad = next((v for v in rec.values() if isinstance(v, BadBytes)), None)
            if bad is not None:
                log.add(RowError(number, None, "(row)", str(bad)))
                continue
            try:
                pending.append((number, parser.parse(rec)))
            except EventError as exc:
                log.add(RowError(number, shown_code, exc.field, exc.message))
                continue
            except (ValueError, OverflowError, TypeError, ArithmeticError) as exc:
                # Whatever a cell makes the parser trip on is that row's problem, never the file's.
                log.add(RowError(number, shown_code, "(row)", f"{type(exc).__name__}: {exc}"[:200]))
                continue
            if len(pending) >= batch:
                flush(pending)
                pending = []
                if not dry_run:
                    tx.commit()
                    tx = conn.begin()
        flush(pending)
        report.errors = [e.__dict__ for e in log.first]
        if dry_run:
            tx.rollback()
        else:
            record_run(conn, "import", path.name, report, started, errors=log.count)
            tx.commit()
    except ImportFileError:
        if conn.in_transaction():
            conn.rollback()
        raise
    except Exception as exc:
        if conn.in_transaction():
            conn.rollback()  # the batch in progress; the ones before it are committed
        report.errors = [e.__dict__ for e in log.first]
        if not dry_run:
            _record_aborted(engine, path, report, log.count, started, number, exc)
        raise ImportAborted(report, log, number, exc) from exc
    finally:
        conn.close()
        log.close()
    return report, log.first


def _record_aborted(engine: sa.Engine, path: Path, report: IngestReport, errors: int, started: Any, row: int,
                    exc: BaseException) -> None:
    try:
        with engine.begin() as conn:
            record_run(conn, "import", path.name, report, started, errors=errors, stopped_at_row=row,
                       failure=f"{type(exc).__name__}: {exc}"[:500])
    except Exception:  # the database itself may be what failed; the command still says where it stopped
        import logging

        logging.getLogger(__name__).exception("could not record the aborted import of %s", path)


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
        report, errors = import_file(obj.engine, obj.config, file, dry_run=dry_run, errors_path=errors_path,
                                     on_row=progress.row)
    except ImportFileError as exc:
        raise click.ClickException(str(exc)) from None
    except ImportAborted as exc:
        # Not one row's fault: what was committed stays, the run is recorded, and the exit code says so.
        click.echo(f"{file.name}: import STOPPED at row {exc.row} ({type(exc.cause).__name__}: {exc.cause}); "
                   f"{exc.report.created} created, {exc.report.updated} updated before that, "
                   f"{exc.errors.count} row error(s); the run is recorded. Fix the cause and import again "
                   f"(rows already in are unchanged the second time).", err=True)
        sys.exit(EXIT_ABORTED)
    total = errors.total
    progress.finish(total, dry_run)
    summary = {k: v for k, v in report.as_dict().items() if k != "errors"} | {"errors": total, "dry_run": dry_run}
    if as_json:
        click.echo(json.dumps(summary | {"error_rows": [e.__dict__ for e in errors[:1000]]}, ensure_ascii=False))
    else:
        verb = "would be" if dry_run else "were"
        click.echo(
            f"{file.name}: {report.created} created, {report.updated} updated, {report.unchanged} unchanged, "
            f"{report.stale} stale (older than what is stored), {total} row(s) with errors {verb} skipped"
            + (" (dry run: nothing written)" if dry_run else "")
        )
        for e in errors[:20]:
            click.echo(f"  row {e.row} ({e.code or 'no code'}): {e.field}: {e.error}", err=True)
        if total > 20:
            click.echo(f"  ... {total - 20} more; use --errors FILE for the full report", err=True)
    if total:
        sys.exit(EXIT_ROW_ERRORS)
