"""SMS gateway: notice audit trail, modem heartbeat row, per-part message references.

Revision ID: s0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "s0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.add_column(sa.Column("message_refs", sa.String(200)))
    op.create_index("ix_notices_sent_at", "notices", ["sent_at"])
    op.create_index("ix_notices_message_ref", "notices", ["message_ref"])
    op.create_table(
        "notice_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("notice_id", sa.Integer, sa.ForeignKey("notices.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(100)),
        sa.Column("from_state", sa.String(16)),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_notice_events_notice", "notice_events", ["notice_id", "id"])
    op.create_table(
        "modem_health",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("sim", sa.String(32)),
        sa.Column("registered", sa.Boolean),
        sa.Column("network", sa.String(64)),
        sa.Column("signal_percent", sa.Integer),
        sa.Column("model", sa.String(100)),
        sa.Column("imei", sa.String(32)),
        sa.Column("balance_text", sa.Text),
        sa.Column("balance_amount", sa.Float),
        sa.Column("balance_low", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("balance_checked_at", TS),
        sa.Column("last_seen_at", TS),
        sa.Column("detail", sa.Text),
        sa.Column("pid", sa.Integer),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("modem_health")
    op.drop_index("ix_notice_events_notice", table_name="notice_events")
    op.drop_table("notice_events")
    op.drop_index("ix_notices_message_ref", table_name="notices")
    op.drop_index("ix_notices_sent_at", table_name="notices")
    with op.batch_alter_table("notices") as batch:
        batch.drop_column("message_refs")
