"""Ratings to the provincial system: a push state per rating, back-off, and the marker that finds a push
whose answer was lost (kiosk/ratings/push.py).

Revision ID: v0003
Revises: p0004
"""
import sqlalchemy as sa
from alembic import op

revision = "v0003"
down_revision = "p0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("ratings") as batch:
        batch.add_column(sa.Column("push_state", sa.String(16), nullable=False, server_default="pending"))
        batch.add_column(sa.Column("push_attempts", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("push_next_at", TS))
        batch.add_column(sa.Column("push_key", sa.String(40)))
        batch.add_column(sa.Column("push_ref", sa.String(40)))
    op.execute("UPDATE ratings SET push_state = 'pushed' WHERE pushed_at IS NOT NULL")
    op.create_index("ix_ratings_push", "ratings", ["push_state", "id"])


def downgrade() -> None:
    op.drop_index("ix_ratings_push", table_name="ratings")
    with op.batch_alter_table("ratings") as batch:
        for col in ("push_ref", "push_key", "push_next_at", "push_attempts", "push_state"):
            batch.drop_column(col)
