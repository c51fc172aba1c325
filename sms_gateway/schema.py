"""The outbox table, owned by the SMS gateway (created by migration 0001 in motcua/migrations)."""
import sqlalchemy as sa

from motcua.timeutil import UtcDateTime

metadata = sa.MetaData()

notices = sa.Table(
    "notices",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
    sa.Column("dossier_code", sa.String(100)),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("phone_raw", sa.String(64), nullable=False),
    sa.Column("phone_e164", sa.String(20)),
    sa.Column("params", sa.Text, nullable=False, server_default="{}"),
    sa.Column("text", sa.Text),
    sa.Column("encoding", sa.String(16)),
    sa.Column("parts", sa.Integer),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UtcDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("cms_code", sa.Integer),
    sa.Column("message_ref", sa.Integer),
    sa.Column("delivery_status", sa.String(16)),
    sa.Column("delivered_at", UtcDateTime),
    sa.Column("sent_at", UtcDateTime),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
