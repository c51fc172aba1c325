"""Ratings table (created by migration v0002 in motcua/migrations)."""
import sqlalchemy as sa

from motcua.timeutil import UtcDateTime

metadata = sa.MetaData()

# One row per rating. Anonymous on purpose: no dossier code, ticket, phone or time finer than the
# moment of the tap; only where the citizen was served (counter, service, procedure).
ratings = sa.Table(
    "ratings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("day", sa.Date, nullable=False),  # local day in [site] timezone, for the report
    sa.Column("score", sa.Integer, nullable=False),  # 1 (very unhappy) .. 5 (very happy)
    sa.Column("reasons", sa.String(200), nullable=False, server_default=""),  # comma list of REASONS keys
    sa.Column("channel", sa.String(16), nullable=False),  # kiosk | counter
    sa.Column("counter", sa.String(16)),
    sa.Column("service_code", sa.String(8)),
    sa.Column("procedure", sa.String(300)),
    sa.Column("pushed_at", UtcDateTime),  # sent to the provincial system, where a connector supports it
    sa.Column("push_error", sa.Text),
)
