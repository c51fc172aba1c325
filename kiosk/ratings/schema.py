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
    # kiosk/ratings/push.py: PushState, tries so far, no try before push_next_at (back-off), the marker
    # sent in the comment (to find a push whose answer was lost) and the provincial system's id for it.
    sa.Column("push_state", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("push_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("push_next_at", UtcDateTime),
    sa.Column("push_key", sa.String(40)),
    sa.Column("push_ref", sa.String(40)),
)
sa.Index("ix_ratings_push", ratings.c.push_state, ratings.c.id)
