"""`kiosk backup` (run by motcua-backup.timer): an online SQLite copy taken while others write,
checked, and only the newest N kept."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from kiosk.backup import BackupError, backup, list_backups
from motcua.config import Config

KIOSK = Path(sys.executable).with_name("kiosk")


def _count(path: Path, table: str) -> int:
    con = sqlite3.connect(path)
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


def test_backup_while_another_process_writes(config: Config, engine: sa.Engine) -> None:
    """Writers keep committing during the copy; the copy is one consistent instant, intact."""
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE load_rows (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        conn.exec_driver_sql("INSERT INTO load_rows (body) SELECT hex(randomblob(200)) FROM "
                             "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) "
                             "SELECT x FROM c)")
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        while not stop.is_set():
            with engine.begin() as conn:
                conn.exec_driver_sql("INSERT INTO load_rows (body) VALUES (hex(randomblob(200)))")
            written[0] += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        result = backup(config, keep=3)
    finally:
        stop.set()
        thread.join()
    assert written[0] > 0
    copied = _count(result.path, "load_rows")
    assert 20000 <= copied <= 20000 + written[0]
    con = sqlite3.connect(result.path)
    assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert con.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # a standalone file
    assert con.execute("SELECT count(*) FROM dossiers").fetchone() == (0,)  # the real schema came along
    con.close()
    assert not list(result.path.parent.glob(".*partial"))


def test_only_the_newest_n_are_kept(config: Config, engine: sa.Engine) -> None:
    start = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
    paths = [backup(config, keep=3, now=start + timedelta(hours=12 * i)).path for i in range(5)]
    kept = list_backups(config)
    assert kept == paths[-3:]
    assert not paths[0].exists() and not paths[1].exists()


def test_postgresql_is_not_backed_up_here(make_config) -> None:
    cfg = make_config(database={"url": "postgresql://motcua@localhost/motcua"})
    with pytest.raises(BackupError, match="pg_dump"):
        backup(cfg)


def test_missing_database_is_said_plainly(config: Config) -> None:
    with pytest.raises(BackupError, match="does not exist"):
        backup(config)


def test_backup_command(config: Config, engine: sa.Engine, tmp_path: Path) -> None:
    cfg_file = tmp_path / "backup.toml"
    cfg_file.write_text(f'[paths]\ndata_dir = "{config.paths.data_dir}"\n', encoding="utf-8")
    for _ in range(3):
        res = subprocess.run([str(KIOSK), "--config", str(cfg_file), "backup", "--keep", "2"],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
    assert "backup written:" in res.stdout and "2 kept, 1 old removed" in res.stdout
    assert len(list_backups(config)) == 2
    res = subprocess.run([str(KIOSK), "--config", str(cfg_file), "backup", "--keep", "0"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "Traceback" not in res.stderr
