"""SMS that resolves itself and talks back: unmatched delivery reports (evidence for uncertain
notices), incoming messages (text-in lookup) and opt-outs.

Revision ID: s0015
Revises: s0002
"""
import sqlalchemy as sa
from alembic import op

revision = "s0015"
down_revision = "s0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sms_reports",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("phone_e164", sa.String(20)),
        sa.Column("message_ref", sa.Integer, nullable=False),
        sa.Column("delivered", sa.Boolean, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("notice_id", sa.Integer, sa.ForeignKey("notices.id", ondelete="SET NULL")),
    )
    op.create_index("ix_sms_reports_phone", "sms_reports", ["phone_e164", "received_at"])
    op.create_table(
        "incoming_messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dedupe_key", sa.String(64), nullable=False, unique=True),
        sa.Column("phone_e164", sa.String(20)),
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("parts", sa.Integer, nullable=False, server_default="1"),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("command", sa.String(16)),
        sa.Column("dossier_code", sa.String(100)),
        sa.Column("reply_notice_id", sa.Integer, sa.ForeignKey("notices.id", ondelete="SET NULL")),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_incoming_phone", "incoming_messages", ["phone_e164", "received_at"])
    op.create_table(
        "opt_outs",
        sa.Column("phone_e164", sa.String(20), primary_key=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("keyword", sa.String(16), nullable=False),
        sa.Column("incoming_id", sa.Integer, sa.ForeignKey("incoming_messages.id", ondelete="SET NULL")),
    )


def downgrade() -> None:
    op.drop_table("opt_outs")
    op.drop_index("ix_incoming_phone", table_name="incoming_messages")
    op.drop_table("incoming_messages")
    op.drop_index("ix_sms_reports_phone", table_name="sms_reports")
    op.drop_table("sms_reports")
