"""Database engine and migrations shared by every process of the appliance.

SQLite (the default, one file in the data directory) is opened in WAL mode with
`synchronous=FULL`, a busy timeout and foreign keys on, so that the web workers, the print
worker and the SMS gateway can share it safely. PostgreSQL is used by URL for a hall where
several kiosks share one database; its driver is the optional extra `motcua-kiosk[postgresql]`
(psycopg), which hardware/setup.sh installs when the config names PostgreSQL.
"""
from __future__ import annotations

import ast
import contextlib
import fcntl
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from motcua.config import Config

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")
PG_MIGRATION_LOCK = 0x6D6F7463  # "motc": advisory lock id held while migrating PostgreSQL
POSTGRESQL_EXTRA_MISSING = ("[database] url names PostgreSQL but its driver (psycopg) is not installed: "
                            "install motcua-kiosk[postgresql] (on the Pi: sudo hardware/setup.sh --postgresql)")


class DriverMissing(RuntimeError):
    """The configured database needs a driver this installation left out (an optional extra)."""


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(cfg: Config, *, migrate_now: bool = True) -> Engine:
    """Create the engine for the configured database and bring its schema up to date."""
    url = sa.make_url(cfg.database.url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            connect_args={"timeout": cfg.database.busy_timeout_ms / 1000, "check_same_thread": False},
        )
        _sqlite_pragmas(engine, cfg.database.busy_timeout_ms)
    else:
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        if url.drivername == "postgresql+psycopg":
            _require_psycopg()
        engine = sa.create_engine(url, pool_size=cfg.database.pool_size, pool_pre_ping=True)
    if migrate_now:
        migrate(engine)
    return engine


def _require_psycopg() -> None:
    try:
        import psycopg  # only to see that the optional driver is there; SQLAlchemy imports it again
    except ImportError:
        raise DriverMissing(POSTGRESQL_EXTRA_MISSING) from None
    del psycopg


def _sqlite_pragmas(engine: Engine, busy_ms: int) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # pysqlite's own transaction handling defers BEGIN; let SQLAlchemy emit it so that
        # "BEGIN IMMEDIATE" below takes the write lock up front (no deadlock on upgrade).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn):
        # Writers take the lock at BEGIN so that two writers queue on the busy timeout instead
        # of failing when a read lock cannot be upgraded; readers (see `reading`) stay deferred.
        if conn.get_execution_options().get("readonly"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextlib.contextmanager
def reading(engine: Engine) -> Iterator[sa.Connection]:
    """A connection for reads only: on SQLite it does not take the write lock."""
    with engine.connect() as conn:
        yield conn.execution_options(readonly=True)


def _alembic_config(connection: sa.Connection | None = None) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    acfg = AlembicConfig()
    acfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        acfg.attributes["connection"] = connection
    return acfg


def head_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(_alembic_config()).get_heads())


def current_revisions(engine: Engine) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def declared_heads() -> set[str] | None:
    """The heads the migration scripts declare, read without importing Alembic; None if unsure.

    Alembic with Mako costs ~10 MB in every long-running process, and a service start usually finds
    the schema current. So the scripts' `revision`/`down_revision` literals are read here, and only a
    database that differs (or a script this cannot read) goes through Alembic itself.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found: dict[str, object] = {}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                if node.targets[0].id in ("revision", "down_revision"):
                    try:
                        found[node.targets[0].id] = ast.literal_eval(node.value)
                    except ValueError:
                        return None
        rev, down = found.get("revision"), found.get("down_revision")
        if not isinstance(rev, str):
            return None
        revisions.add(rev)
        if isinstance(down, str):
            parents.add(down)
        elif isinstance(down, (tuple, list)):
            parents.update(down)
        elif down is not None:
            return None
    return revisions - parents or None


def _stamped_revisions(engine: Engine) -> set[str]:
    """The revisions recorded in the database (empty for a new one), by plain SQL."""
    with reading(engine) as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return set()
        return {row[0] for row in conn.exec_driver_sql("SELECT version_num FROM alembic_version")}


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Only one process migrates at a time; the others wait, then find nothing to do."""
    if is_sqlite(engine):
        db = engine.url.database
        if not db or db == ":memory:":
            yield
            return
        with open(f"{db}.migrate.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    else:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({PG_MIGRATION_LOCK})")
            conn.commit()
            try:
                yield
            finally:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})")
                conn.commit()


def migrate(engine: Engine) -> None:
    """Apply pending migrations (all branches), safely when several processes start at once.

    The lock is taken before the first connection: on a new SQLite file that connection switches
    the journal to WAL, which needs the database to itself.
    """
    with _migration_lock(engine):
        if _stamped_revisions(engine) == declared_heads():
            return  # the usual start: nothing to do, and Alembic not imported
        from alembic import command

        heads = head_revisions()
        current = current_revisions(engine)
        if current == heads:
            return
        unknown = current - _all_revisions()
        if unknown:
            raise RuntimeError(
                f"database schema {sorted(unknown)} is newer than this software; refusing to start"
            )
        log.info("migrating database from %s to %s", sorted(current) or "empty", sorted(heads))
        with engine.begin() as conn:
            command.upgrade(_alembic_config(conn), "heads")


def _all_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config())
    return {rev.revision for rev in script.walk_revisions()}
