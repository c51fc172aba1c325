"""Online backup of the SQLite database, run by motcua-backup.timer (`kiosk backup --keep 14`).

SQLite's backup API copies the database page by page inside one read transaction: in WAL mode the
kiosk, the print worker and the SMS gateway keep writing meanwhile, and the copy is the database
as it was at one instant. Copying the file with `cp` instead could catch it between a write to
the WAL and its checkpoint. The copy is checked (`PRAGMA integrity_check`) before it replaces
anything, and only the newest N copies are kept: an SD card has little room.
"""
from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import click
from sqlalchemy.engine import make_url

from motcua.cli import AppContext
from motcua.config import Config

PREFIX, SUFFIX = "motcua-", ".db"


class BackupError(Exception):
    """A backup that could not be made, said plainly."""


@dataclass
class BackupResult:
    path: Path
    size_bytes: int
    seconds: float
    removed: list[Path]


def sqlite_file(cfg: Config) -> Path | None:
    """The database file, or None when the database is not SQLite (or is in memory)."""
    url = make_url(cfg.database.url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def backup_dir(cfg: Config) -> Path:
    return cfg.paths.data_dir / "backups"


def list_backups(cfg: Config) -> list[Path]:
    """Finished backups, oldest first (names sort by time)."""
    folder = backup_dir(cfg)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.startswith(PREFIX) and p.name.endswith(SUFFIX))


def backup(cfg: Config, keep: int = 14, now: datetime | None = None) -> BackupResult:
    """Copy the live database to data_dir/backups/motcua-<UTC time>.db, check it, keep the newest `keep`."""
    if keep < 1:
        raise BackupError("keep at least one backup")
    source = sqlite_file(cfg)
    if source is None:
        raise BackupError("the database is not a SQLite file: back up PostgreSQL with pg_dump on its server")
    if not source.is_file():
        raise BackupError(f"database file {source} does not exist (has the kiosk ever started?)")
    folder = backup_dir(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%S%fZ")
    final = folder / f"{PREFIX}{stamp}{SUFFIX}"
    partial = folder / f".{final.name}.partial"
    start = time.monotonic()
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=cfg.database.busy_timeout_ms / 1000)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open {source}: {exc}") from None
    try:
        partial.unlink(missing_ok=True)
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # one step: one consistent snapshot, writers go on (WAL)
            dst.execute("PRAGMA journal_mode=DELETE")  # a standalone file, no -wal beside it
            check = [r[0] for r in dst.execute("PRAGMA integrity_check").fetchall()]
        finally:
            dst.close()
        if check != ["ok"]:
            raise BackupError(f"the copy failed its integrity check: {'; '.join(map(str, check[:5]))}")
        with open(partial, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(partial, final)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except sqlite3.Error as exc:
        raise BackupError(f"backup of {source} failed: {exc}") from None
    except OSError as exc:
        raise BackupError(f"cannot write the backup in {folder}: {exc.strerror}") from None
    finally:
        src.close()
        partial.unlink(missing_ok=True)
    removed = []
    for old in list_backups(cfg)[:-keep]:
        old.unlink(missing_ok=True)
        removed.append(old)
    return BackupResult(final, final.stat().st_size, time.monotonic() - start, removed)


@click.command("backup")
@click.option("--keep", type=click.IntRange(min=1), default=14, show_default=True,
              help="How many backups to keep (the oldest beyond this are deleted).")
@click.pass_obj
def backup_command(obj: AppContext, keep: int) -> None:
    """Back up the SQLite database online into data_dir/backups."""
    try:
        result = backup(obj.config, keep=keep)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"backup written: {result.path} ({result.size_bytes / 2**20:.1f} MB in {result.seconds:.1f} s); "
               f"{len(list_backups(obj.config))} kept, {len(result.removed)} old removed")
