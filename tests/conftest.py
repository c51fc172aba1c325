"""Shared fixtures: a config in a temporary data folder, its SQLite engine, the Flask app and client,
and a real PostgreSQL server started for the session (Debian's postgresql package).

MOTCUA_TEST_NOW (ISO 8601 with an offset, e.g. 2026-12-07T12:00:00+07:00) moves every in-process test
to that moment with time-machine, the clock still ticking; `.ci/run` runs the tests marked `clock`
(their result depends on the time, date or weekday) at a lunch break, an evening and a Sunday."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import sqlalchemy as sa
import time_machine

from motcua.config import Config, load_config
from motcua.db import make_engine

PG_BIN = Path("/usr/lib/postgresql/15/bin")
NOW_ENV = "MOTCUA_TEST_NOW"
TOKEN = "test-token-0123456789"
# argon2 at its cheapest, for tests that sign staff in: the default cost is ~0.2 s of CPU per hash or check
# (tests/test_staff.py pins the default).
CHEAP_HASHING = {"password_time_cost": 1, "password_memory_kib": 8192}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "clock: the result depends on the time, date or weekday; CI runs these at frozen moments")
    config.addinivalue_line(
        "markers", f"real_clock: starts processes that stamp and read the same rows; {NOW_ENV} is not applied "
                   "(the travel cannot reach them, and two clocks days apart would fail the test, not the code)")


def _test_now() -> datetime | None:
    raw = os.environ.get(NOW_ENV)
    if not raw:
        return None
    moment = datetime.fromisoformat(raw)
    if moment.tzinfo is None:
        raise pytest.UsageError(f"{NOW_ENV}={raw!r} needs an offset, e.g. 2026-12-07T12:00:00+07:00")
    return moment


def pytest_report_header(config: pytest.Config) -> str | None:
    moment = _test_now()
    return f"frozen clock: {moment.isoformat()} ({NOW_ENV}), ticking" if moment else None


@pytest.fixture(autouse=True)
def _frozen_moment(request: pytest.FixtureRequest) -> Iterator[None]:
    """Travel to $MOTCUA_TEST_NOW for the test (time still advances, so waits and timeouts work)."""
    moment = _test_now()
    if moment is None or request.node.get_closest_marker("real_clock"):
        yield
        return
    with time_machine.travel(moment, tick=True):
        yield


@pytest.fixture
def make_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Config]:
    """Build a Config from overrides; nothing is read from /etc or the environment."""
    monkeypatch.delenv("MOTCUA_CONFIG", raising=False)

    def _make(overrides: dict[str, Any] | None = None, **sections: Any) -> Config:
        base: dict[str, Any] = {"paths": {"data_dir": str(tmp_path / "data")}, "ingest": {"api_token": TOKEN}}
        for source in (overrides or {}, sections):
            for key, value in source.items():
                base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
        path = tmp_path / "config.toml"
        path.write_text("", encoding="utf-8")
        return load_config(path, base)

    return _make


@pytest.fixture
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Config overrides for `kiosk doctor` tests: an empty config.toml and a data folder in tmp_path."""
    monkeypatch.delenv("MOTCUA_CONFIG", raising=False)
    (tmp_path / "data").mkdir()
    (tmp_path / "config.toml").write_text("", encoding="utf-8")
    return {"paths": {"data_dir": str(tmp_path / "data")}}


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    return make_config()


@pytest.fixture(scope="session")
def _migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated to head by the real migrations, once per session: the `engine`
    fixtures start from a copy of it (migrating a new file costs ~0.2 s, and most tests need one).
    Tests of the migrations themselves build their databases with make_engine directly."""
    folder = tmp_path_factory.mktemp("migrated")
    (folder / "config.toml").write_text("", encoding="utf-8")
    cfg = load_config(folder / "config.toml", {"paths": {"data_dir": str(folder / "data")}})
    make_engine(cfg).dispose()  # the last connection closed checkpoints the WAL into the file
    migrated = Path(sa.make_url(cfg.database.url).database or "")
    assert not migrated.with_name(migrated.name + "-wal").exists()
    return migrated


def _test_engine(cfg: Config, migrated: Path) -> sa.Engine:
    """make_engine, with a new SQLite file copied from the migrated one instead of migrated again."""
    url = sa.make_url(cfg.database.url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        target = Path(url.database)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(migrated, target)
    return make_engine(cfg)  # still checks the revision, as every start does


@pytest.fixture
def engine(config: Config, _migrated_sqlite: Path) -> Iterator[sa.Engine]:
    eng = _test_engine(config, _migrated_sqlite)
    yield eng
    eng.dispose()


@pytest.fixture
def app(config: Config, engine: sa.Engine):
    from kiosk.app import create_app

    return create_app(config, engine, test_config={"TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


# --- PostgreSQL ---------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a Unix socket; yields a base URL (no database name)."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail("PostgreSQL server binaries missing: run scripts/setup.sh --test")
    root = Path(tempfile.mkdtemp(prefix="motcua-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run([*as_user, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                    "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
    subprocess.run([*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "start",
                    "-o", f"-p {port} -k {sock} -c listen_addresses='' -c fsync=off"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@/?host={sock}&port={port}"
    finally:
        subprocess.run([*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _pg_new_database(pg_server: str, template: str | None = None) -> Iterator[str]:
    """A new database on the session's server (a copy of `template` when given), dropped afterwards;
    yields its name."""
    name = f"t_{int(time.time() * 1000) % 10**9}_{os.getpid()}_{_free_port()}"
    admin = sa.create_engine(pg_server.replace("/?", "/postgres?"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def _pg_migrated(pg_server: str) -> Iterator[str]:
    """A database migrated to head once per session; `any_engine` copies it (CREATE DATABASE ... TEMPLATE)."""
    with _pg_new_database(pg_server) as name:
        eng = sa.create_engine(pg_server.replace("/?", f"/{name}?"))
        from motcua.db import migrate
        migrate(eng)
        eng.dispose()  # a template must have no connections when it is copied
        yield name


@pytest.fixture
def pg_migrated_database(pg_server: str, _pg_migrated: str) -> Iterator[str]:
    """A fresh database already at head (a copy of the session's migrated one); yields its URL."""
    with _pg_new_database(pg_server, _pg_migrated) as name:
        yield pg_server.replace("/?", f"/{name}?")


@pytest.fixture
def pg_database(pg_server: str) -> Iterator[str]:
    """A fresh, empty database on the session's server; yields its URL."""
    with _pg_new_database(pg_server) as name:
        yield pg_server.replace("/?", f"/{name}?")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_engine(request: pytest.FixtureRequest, make_config: Callable[..., Config]) -> Iterator[sa.Engine]:
    """The store on both backends: SQLite file and a real PostgreSQL server."""
    if request.param == "sqlite":
        cfg = make_config()
    else:
        cfg = make_config(database={"url": request.getfixturevalue("pg_migrated_database")})
    eng = _test_engine(cfg, request.getfixturevalue("_migrated_sqlite"))
    yield eng
    eng.dispose()


# --- a real server and a real browser -----------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]


def write_config_file(path: Path, cfg_dict: dict[str, Any]) -> Path:
    """Write a TOML config (simple nested tables of scalars/lists) for a subprocess."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return str(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines: list[str] = []

    def table(prefix: str, d: dict[str, Any]) -> None:
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict)}
        if scalars:
            lines.append(f"[{prefix}]")
            lines.extend(f"{k} = {value(v)}" for k, v in scalars.items())
        for k, v in d.items():
            if isinstance(v, dict):
                table(f"{prefix}.{k}" if prefix else k, v)

    for section, body in cfg_dict.items():
        table(section, body)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start `kiosk serve` (real gunicorn) with a config; returns its base URL. Stopped after the test."""
    procs: list[subprocess.Popen] = []

    def _start(sections: dict[str, Any] | None = None, workers: int = 1) -> str:
        port = _free_port()
        data = tmp_path / f"server-{port}"
        cfg = {"paths": {"data_dir": str(data)}, "ingest": {"api_token": TOKEN}}
        for k, v in (sections or {}).items():
            cfg[k] = {**cfg.get(k, {}), **v}
        path = write_config_file(tmp_path / f"server-{port}.toml", cfg)
        log = open(tmp_path / f"server-{port}.log", "wb")
        proc = subprocess.Popen(
            [str(Path(os.sys.executable)), "-m", "kiosk.cli", "--config", str(path), "serve",
             "--bind", f"127.0.0.1:{port}", "--workers", str(workers)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"kiosk serve exited: {(tmp_path / f'server-{port}.log').read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return url
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("kiosk serve did not start in 30 s")

    _start.processes = procs  # type: ignore[attr-defined]  # for tests that stop the server themselves
    yield _start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium missing: run scripts/setup.sh --test")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context per test (no cookies/storage carried over), 1280x800."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="vi-VN")
    pg = context.new_page()
    yield pg
    context.close()


ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
