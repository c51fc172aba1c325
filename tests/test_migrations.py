"""Migrations run automatically and safely: several processes starting at once on one new database."""
from __future__ import annotations

import subprocess
import sys

import sqlalchemy as sa

from motcua.db import current_revisions, declared_heads, head_revisions, make_engine
from tests.conftest import write_config_file

STARTER = """
import sys
from motcua.config import load_config
from motcua.db import make_engine
make_engine(load_config(sys.argv[1])).dispose()
print("ok")
"""


def test_concurrent_starts_migrate_once(tmp_path):
    cfg = write_config_file(tmp_path / "c.toml", {"paths": {"data_dir": str(tmp_path / "data")}})
    procs = [subprocess.Popen([sys.executable, "-c", STARTER, str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(6)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    eng = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'motcua.db'}")
    assert current_revisions(eng) == head_revisions()
    eng.dispose()


def test_heads_read_without_alembic_are_alembics_heads():
    assert declared_heads() == head_revisions()


def test_a_start_on_a_current_database_does_not_import_alembic(tmp_path):
    cfg = write_config_file(tmp_path / "c.toml", {"paths": {"data_dir": str(tmp_path / "data")}})
    probe = STARTER + "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))\n"
    first = subprocess.run([sys.executable, "-c", probe, str(cfg)], capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "alembic" in first.stdout  # the new database was migrated through Alembic
    second = subprocess.run([sys.executable, "-c", probe, str(cfg)], capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[-1] == "[]"


def test_a_database_behind_the_scripts_is_still_migrated(tmp_path):
    from alembic import command

    from motcua.db import _alembic_config

    cfg = write_config_file(tmp_path / "c.toml", {"paths": {"data_dir": str(tmp_path / "data")}})
    run = [sys.executable, "-c", STARTER, str(cfg)]
    assert subprocess.run(run, capture_output=True, timeout=120).returncode == 0
    eng = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'motcua.db'}")
    head = sorted(head_revisions())[0]
    with eng.begin() as conn:  # as if this head's last migration had not run yet
        command.downgrade(_alembic_config(conn), f"{head}-1")
    assert current_revisions(eng) != head_revisions()
    out = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert current_revisions(eng) == head_revisions()
    eng.dispose()


def test_sqlite_pragmas(engine):
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000


def test_postgres_schema_at_head(any_engine):
    assert current_revisions(any_engine) == head_revisions()
    insp = sa.inspect(any_engine)
    assert {"dossiers", "dossier_history", "notices", "ingest_runs"} <= set(insp.get_table_names())


def test_database_from_newer_software_is_refused(config):
    eng = make_engine(config)
    with eng.begin() as conn:
        conn.exec_driver_sql("DELETE FROM alembic_version")
        conn.exec_driver_sql("INSERT INTO alembic_version (version_num) VALUES ('zz9999')")
    try:
        make_engine(config)
    except RuntimeError as exc:
        assert "newer than this software" in str(exc)
    else:
        raise AssertionError("a database from newer software must be refused")
    finally:
        eng.dispose()
