"""Print jobs addressed to a station; printer state per station.

Existing rows (a single box) belong to the default station "main": jobs get station = 'main', and the
one printer_status row, whose name was already "main", is keyed by that station id from now on.

Revision ID: p0004
Revises: v0002
"""
import sqlalchemy as sa
from alembic import op

revision = "p0004"
down_revision = "v0002"
branch_labels = None
depends_on = None

DEFAULT_STATION = "main"  # motcua.config.DEFAULT_STATION_ID when this was written


def upgrade() -> None:
    with op.batch_alter_table("print_jobs") as batch:
        batch.add_column(sa.Column("station", sa.String(32), nullable=False, server_default=DEFAULT_STATION))
    op.drop_index("ix_print_jobs_state", table_name="print_jobs")
    op.create_index("ix_print_jobs_station_state", "print_jobs", ["station", "state", "id"])
    with op.batch_alter_table("printer_status") as batch:
        batch.alter_column("name", new_column_name="station", existing_type=sa.String(32), existing_nullable=False)
    op.execute(sa.text("UPDATE printer_status SET station = :s WHERE station = 'main'").bindparams(s=DEFAULT_STATION))


def downgrade() -> None:
    with op.batch_alter_table("printer_status") as batch:
        batch.alter_column("station", new_column_name="name", existing_type=sa.String(32), existing_nullable=False)
    op.drop_index("ix_print_jobs_station_state", table_name="print_jobs")
    op.create_index("ix_print_jobs_state", "print_jobs", ["state", "id"])
    with op.batch_alter_table("print_jobs") as batch:
        batch.drop_column("station")
