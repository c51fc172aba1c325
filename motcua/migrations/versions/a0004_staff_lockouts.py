"""Sign-in lockout per account and address, counted before the password is checked.

Revision ID: a0004_lockouts
Revises: a0003
"""
import sqlalchemy as sa
from alembic import op

revision = "a0004_lockouts"
down_revision = "a0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # One row per (account name, client address): a LAN client that guesses can lock the account
    # only for itself, never for the official at the counter PC.
    op.create_table(
        "staff_lockouts",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("address", sa.String(64), primary_key=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("window_start", TS, nullable=False),
        sa.Column("locked_until", TS),
    )


def downgrade() -> None:
    op.drop_table("staff_lockouts")
