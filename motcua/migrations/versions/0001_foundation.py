"""Foundation: dossiers, their status history, the SMS outbox, ingest runs.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dossiers",
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
        sa.Column("received_at", TS),
        sa.Column("source_version", sa.BigInteger),
        sa.Column("source_updated_at", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_dossiers_phone", "dossiers", ["phone"])
    op.create_index("ix_dossiers_status", "dossiers", ["status"])
    op.create_table(
        "dossier_history",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dossier_id", sa.Integer, sa.ForeignKey("dossiers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("from_status", sa.String(32)),
        sa.Column("to_status", sa.String(32), nullable=False),
        sa.Column("source_status", sa.String(64)),
        sa.Column("source_version", sa.BigInteger),
        sa.Column("source_updated_at", TS),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(100)),
        sa.Column("changed_at", TS, nullable=False),
    )
    op.create_index("ix_dossier_history_dossier", "dossier_history", ["dossier_id", "id"])
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
        sa.Column("dossier_code", sa.String(100)),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("phone_raw", sa.String(64), nullable=False),
        sa.Column("phone_e164", sa.String(20)),
        sa.Column("params", sa.Text, nullable=False, server_default="{}"),
        sa.Column("text", sa.Text),
        sa.Column("encoding", sa.String(16)),
        sa.Column("parts", sa.Integer),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TS),
        sa.Column("last_error", sa.Text),
        sa.Column("cms_code", sa.Integer),
        sa.Column("message_ref", sa.Integer),
        sa.Column("delivery_status", sa.String(16)),
        sa.Column("delivered_at", TS),
        sa.Column("sent_at", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_notices_due", "notices", ["state", "next_attempt_at"])
    op.create_table(
        "ingest_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("created", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated", sa.Integer, nullable=False, server_default="0"),
        sa.Column("unchanged", sa.Integer, nullable=False, server_default="0"),
        sa.Column("stale", sa.Integer, nullable=False, server_default="0"),
        sa.Column("errors", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("ingest_runs")
    op.drop_table("notices")
    op.drop_table("dossier_history")
    op.drop_table("dossiers")
