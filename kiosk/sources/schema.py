"""Source tables (created by migration c0002 in motcua/migrations)."""
import sqlalchemy as sa

from motcua.timeutil import UtcDateTime

metadata = sa.MetaData()

# One row per configured source kind: where the sync service is, and how it is doing.
source_sync = sa.Table(
    "source_sync",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("cursor", sa.Text),  # the source's own resume point (opaque to everyone else)
    sa.Column("pass_started_at", UtcDateTime),  # the pass in progress began then
    sa.Column("confirmed_at", UtcDateTime),  # start of the last complete pass: the store is known as of then
    sa.Column("last_success_at", UtcDateTime),
    sa.Column("last_attempt_at", UtcDateTime),
    sa.Column("last_error", sa.Text),  # a log-line sentence, never a credential
    sa.Column("last_error_at", UtcDateTime),
    sa.Column("errors_in_row", sa.Integer, nullable=False, server_default="0"),
    sa.Column("applied", sa.BigInteger, nullable=False, server_default="0"),  # dossiers written, all time
    sa.Column("heartbeat_at", UtcDateTime),
)

# When the source last confirmed each dossier (on-demand lookups and refresh passes).
source_checks = sa.Table(
    "source_checks",
    metadata,
    sa.Column("code", sa.String(100), primary_key=True),
    sa.Column("checked_at", UtcDateTime, nullable=False),
)
