"""An import that fails part-way is still recorded: where it stopped and why.

Revision ID: i0002_run_failure
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "i0002_run_failure"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ingest_runs") as batch:
        batch.add_column(sa.Column("stopped_at_row", sa.Integer))  # NULL: the run went to the end
        batch.add_column(sa.Column("failure", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("ingest_runs") as batch:
        batch.drop_column("failure")
        batch.drop_column("stopped_at_row")
