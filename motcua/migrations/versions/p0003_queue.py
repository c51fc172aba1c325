"""Hall queue: daily counters per service, tickets, and the calls the display announces.

Revision ID: p0003
Revises: p0002
"""
import sqlalchemy as sa
from alembic import op

revision = "p0003"
down_revision = "p0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "queue_counters",
        sa.Column("service_code", sa.String(8), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("last_number", sa.Integer, nullable=False),
    )
    op.create_table(
        "queue_tickets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("issued_service", sa.String(8), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("service_code", sa.String(8), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("counter", sa.String(16)),
        sa.Column("call_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("transferred_from", sa.String(8)),
        sa.Column("issued_at", TS, nullable=False),
        sa.Column("queued_at", TS, nullable=False),
        sa.Column("called_at", TS),
        sa.Column("finished_at", TS),
        sa.UniqueConstraint("issued_service", "day", "number", name="uq_queue_tickets_number"),
    )
    op.create_index("ix_queue_tickets_waiting", "queue_tickets", ["day", "service_code", "state", "queued_at"])
    op.create_index("ix_queue_tickets_counter", "queue_tickets", ["day", "counter", "state"])
    op.create_table(
        "queue_calls",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("queue_tickets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("service_code", sa.String(8), nullable=False),
        sa.Column("counter", sa.String(16), nullable=False),
        sa.Column("recall", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("called_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("queue_calls")
    op.drop_index("ix_queue_tickets_counter", table_name="queue_tickets")
    op.drop_index("ix_queue_tickets_waiting", table_name="queue_tickets")
    op.drop_table("queue_tickets")
    op.drop_table("queue_counters")
