"""SMS gateway: Zalo ZNS delivery callbacks, one row per ZNS msg_id (sms_gateway/zns_delivery.py).

Revision ID: s0018
Revises: s0017
"""
import sqlalchemy as sa
from alembic import op

revision = "s0018"
down_revision = "s0017"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "zns_receipts",
        sa.Column("msg_id", sa.String(100), primary_key=True),
        sa.Column("tracking_id", sa.String(64)),
        sa.Column("delivered_at", TS),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("notice_id", sa.Integer, sa.ForeignKey("notices.id", ondelete="SET NULL")),
    )


def downgrade() -> None:
    op.drop_table("zns_receipts")
