"""Sources: the sync service's cursor and health, and when each dossier was last confirmed.

Revision ID: c0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "c0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "source_sync",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("cursor", sa.Text),
        sa.Column("pass_started_at", TS),
        sa.Column("confirmed_at", TS),
        sa.Column("last_success_at", TS),
        sa.Column("last_attempt_at", TS),
        sa.Column("last_error", sa.Text),
        sa.Column("last_error_at", TS),
        sa.Column("errors_in_row", sa.Integer, nullable=False, server_default="0"),
        sa.Column("applied", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("heartbeat_at", TS),
    )
    op.create_table(
        "source_checks",
        sa.Column("code", sa.String(100), primary_key=True),
        sa.Column("checked_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("source_checks")
    op.drop_table("source_sync")
