"""The citizen's visit: print request keys (one job per tap), priority tickets, satisfaction ratings.

Revision ID: v0002
Revises: p0003
"""
import sqlalchemy as sa
from alembic import op

revision = "v0002"
down_revision = "p0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("print_jobs") as batch:
        batch.add_column(sa.Column("request_key", sa.String(64)))
    op.create_index("uq_print_jobs_request_key", "print_jobs", ["request_key"], unique=True)
    op.create_index("ix_print_jobs_kind_ref", "print_jobs", ["kind", "ref", "created_at"])
    with op.batch_alter_table("queue_tickets") as batch:
        batch.add_column(sa.Column("priority", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("reasons", sa.String(200), nullable=False, server_default=""),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("counter", sa.String(16)),
        sa.Column("service_code", sa.String(8)),
        sa.Column("procedure", sa.String(300)),
        sa.Column("pushed_at", TS),
        sa.Column("push_error", sa.Text),
    )
    op.create_index("ix_ratings_day", "ratings", ["day", "counter"])


def downgrade() -> None:
    op.drop_index("ix_ratings_day", table_name="ratings")
    op.drop_table("ratings")
    with op.batch_alter_table("queue_tickets") as batch:
        batch.drop_column("priority")
    op.drop_index("ix_print_jobs_kind_ref", table_name="print_jobs")
    op.drop_index("uq_print_jobs_request_key", table_name="print_jobs")
    with op.batch_alter_table("print_jobs") as batch:
        batch.drop_column("request_key")
