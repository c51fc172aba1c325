"""SMS gateway: several gateways on one outbox. The holder on each notice; modem health per gateway.

`modem_health` was one row (id 1); it becomes one row per gateway (`<station id>/<modem name>`), the old
row kept as the default single box's gateway, "main/modem".

Delivery reports kept for uncertain notices (`sms_reports`, s0015) record the gateway whose modem
received them: message references are per modem, so one modem's report is no evidence for a notice
another modem sent.

Revision ID: s0017
Revises: s0016
"""
import sqlalchemy as sa
from alembic import op

revision = "s0017"
down_revision = "s0016"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
DEFAULT_GATEWAY = "main/modem"  # [station] id "main", [modem] name "modem": a Pi with neither section
_HEALTH = ("state", "sim", "registered", "network", "signal_percent", "model", "imei", "balance_text",
           "balance_amount", "balance_low", "balance_checked_at", "last_seen_at", "detail", "pid", "updated_at")


def _health_columns() -> list[sa.Column]:
    return [
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("sim", sa.String(32)),
        sa.Column("registered", sa.Boolean),
        sa.Column("network", sa.String(64)),
        sa.Column("signal_percent", sa.Integer),
        sa.Column("model", sa.String(100)),
        sa.Column("imei", sa.String(32)),
        sa.Column("balance_text", sa.Text),
        sa.Column("balance_amount", sa.Float),
        sa.Column("balance_low", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("balance_checked_at", TS),
        sa.Column("last_seen_at", TS),
        sa.Column("detail", sa.Text),
        sa.Column("pid", sa.Integer),
        sa.Column("updated_at", TS, nullable=False),
    ]


def upgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.add_column(sa.Column("holder", sa.String(100)))
    op.create_index("ix_notices_state_holder", "notices", ["state", "holder"])
    with op.batch_alter_table("sms_reports") as batch:
        batch.add_column(sa.Column("gateway", sa.String(100)))
    # Built beside the old table and renamed: the primary key is named so as not to clash with the
    # old table's on PostgreSQL; the rows are copied in SQL (no type conversions on the way).
    op.create_table(
        "modem_health_s0017",
        sa.Column("gateway", sa.String(100), nullable=False),
        *_health_columns(),
        # the SIM's daily cap: parts handed to the modem on `sent_day` (local), and until when it waits
        sa.Column("sent_day", sa.Date),
        sa.Column("sent_today", sa.Integer, nullable=False, server_default="0"),
        sa.Column("daily_cap", sa.Integer),
        sa.Column("capped_until", TS),
        sa.PrimaryKeyConstraint("gateway", name="modem_health_gateway_pkey"),
    )
    cols = ", ".join(_HEALTH)
    op.execute(f"INSERT INTO modem_health_s0017 (gateway, {cols}) "
               f"SELECT '{DEFAULT_GATEWAY}', {cols} FROM modem_health WHERE id = 1")
    op.drop_table("modem_health")
    op.rename_table("modem_health_s0017", "modem_health")


def downgrade() -> None:
    op.create_table("modem_health_s0002", sa.Column("id", sa.Integer, nullable=False), *_health_columns(),
                    sa.PrimaryKeyConstraint("id", name="modem_health_pkey_s0002"))
    cols = ", ".join(_HEALTH)
    op.execute(f"INSERT INTO modem_health_s0002 (id, {cols}) SELECT 1, {cols} FROM modem_health "
               f"WHERE gateway = '{DEFAULT_GATEWAY}'")
    op.drop_table("modem_health")
    op.rename_table("modem_health_s0002", "modem_health")
    with op.batch_alter_table("sms_reports") as batch:
        batch.drop_column("gateway")
    op.drop_index("ix_notices_state_holder", table_name="notices")
    with op.batch_alter_table("notices") as batch:
        batch.drop_column("holder")
