"""Notices: the channel that carried each (modem, zns, brandname) and the provider's message id.

Revision ID: s0016
Revises: s0015
"""
import sqlalchemy as sa
from alembic import op

revision = "s0016"
down_revision = "s0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.add_column(sa.Column("channel", sa.String(16)))
        batch.add_column(sa.Column("provider_id", sa.String(100)))


def downgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.drop_column("provider_id")
        batch.drop_column("channel")
