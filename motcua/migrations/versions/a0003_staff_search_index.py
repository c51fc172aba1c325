"""Staff dossier search: newest changes first, from an index.

Revision ID: a0003
Revises: a0002
"""
from alembic import op

revision = "a0003"
down_revision = "a0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # /staff/dossiers lists the latest changes and scans newest first, stopping after 50 matches.
    op.create_index("ix_dossiers_updated_at", "dossiers", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_dossiers_updated_at", "dossiers")
