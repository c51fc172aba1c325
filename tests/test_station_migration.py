"""A single box's database from before stations: its print jobs and printer state become station 'main'."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from alembic import command

from kiosk.printing import jobs
from motcua.db import _alembic_config, make_engine, migrate

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_existing_print_jobs_and_printer_state_move_to_the_default_station(request, make_config, backend):
    sections = {} if backend == "sqlite" else {"database": {"url": request.getfixturevalue("pg_database")}}
    cfg = make_config(**sections)
    engine = make_engine(cfg, migrate_now=False)
    with engine.begin() as conn:  # the schema as it was on a single box before stations
        command.upgrade(_alembic_config(conn), "v0002")
        conn.execute(sa.text("INSERT INTO print_jobs (kind, ref, payload, state, attempts, created_at, updated_at) "
                             "VALUES ('ticket', 'A001', '{}', 'printing', 1, :t, :t)"), {"t": T0})
        conn.execute(sa.text("INSERT INTO printer_status (name, state, detail, changed_at, heartbeat_at) "
                             "VALUES ('main', 'paper_out', 'no paper', :t, :t)"), {"t": T0})
    migrate(engine)
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT station FROM print_jobs")).scalar_one() == "main"
        state = jobs.printer_state(conn, cfg.station.id, now=T0)
        assert (state["station"], state["state"], state["detail"]) == ("main", "paper_out", "no paper")
        assert jobs.mark_interrupted(conn, cfg.station.id) != []  # the box's own worker still recovers it
    engine.dispose()
