"""Printing: durable print jobs and the printer's last known state.

Revision ID: p0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "p0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "print_jobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(100)),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("source", sa.String(32)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("printed_at", TS),
    )
    op.create_index("ix_print_jobs_state", "print_jobs", ["state", "id"])
    op.create_table(
        "printer_status",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("changed_at", TS, nullable=False),
        sa.Column("heartbeat_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("printer_status")
    op.drop_index("ix_print_jobs_state", table_name="print_jobs")
    op.drop_table("print_jobs")
