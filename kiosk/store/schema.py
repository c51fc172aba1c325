"""Dossier tables (created by migration 0001 in motcua/migrations)."""
import sqlalchemy as sa

from motcua.timeutil import UtcDateTime

metadata = sa.MetaData()

dossiers = sa.Table(
    "dossiers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(100), nullable=False, unique=True),
    sa.Column("secret", sa.String(64)),
    sa.Column("procedure", sa.Text, nullable=False, server_default=""),
    sa.Column("field", sa.Text, nullable=False, server_default=""),
    sa.Column("applicant_name", sa.Text, nullable=False, server_default=""),
    sa.Column("phone", sa.String(32)),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("source_status", sa.String(64)),
    sa.Column("appointment_date", sa.Date),
    sa.Column("received_at", UtcDateTime),
    sa.Column("source_version", sa.BigInteger),
    sa.Column("source_updated_at", UtcDateTime),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

dossier_history = sa.Table(
    "dossier_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("dossier_id", sa.Integer, sa.ForeignKey("dossiers.id", ondelete="CASCADE"), nullable=False),
    sa.Column("from_status", sa.String(32)),
    sa.Column("to_status", sa.String(32), nullable=False),
    sa.Column("source_status", sa.String(64)),
    sa.Column("source_version", sa.BigInteger),
    sa.Column("source_updated_at", UtcDateTime),
    sa.Column("via", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(100)),
    sa.Column("changed_at", UtcDateTime, nullable=False),
)

ingest_runs = sa.Table(
    "ingest_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("via", sa.String(16), nullable=False),
    sa.Column("source", sa.Text),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime),
    sa.Column("created", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated", sa.Integer, nullable=False, server_default="0"),
    sa.Column("unchanged", sa.Integer, nullable=False, server_default="0"),
    sa.Column("stale", sa.Integer, nullable=False, server_default="0"),
    sa.Column("errors", sa.Integer, nullable=False, server_default="0"),
    # An import that failed part-way (migration i0002): the row it stopped at and why; NULL when done.
    sa.Column("stopped_at_row", sa.Integer),
    sa.Column("failure", sa.Text),
)
