"""Staff pages: accounts, sign-in attempts (rate limit and lockout), the audit log.

Revision ID: a0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "a0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "staff_users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("display_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", TS),
        sa.Column("session_epoch", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_login_at", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "staff_login_attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("succeeded", sa.Boolean, nullable=False),
    )
    op.create_index("ix_staff_login_attempts_address", "staff_login_attempts", ["address", "at"])
    op.create_table(
        "staff_audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(200)),
        sa.Column("detail", sa.Text),
        sa.Column("address", sa.String(64)),
    )
    op.create_index("ix_staff_audit_at", "staff_audit", ["at"])


def downgrade() -> None:
    op.drop_table("staff_audit")
    op.drop_table("staff_login_attempts")
    op.drop_table("staff_users")
