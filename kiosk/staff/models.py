"""Staff tables (created by migration a0002 in motcua/migrations)."""
import sqlalchemy as sa

from motcua.timeutil import UtcDateTime

metadata = sa.MetaData()

staff_users = sa.Table(
    "staff_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False, server_default=""),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until", UtcDateTime),
    # Bumped when a password changes or an account is disabled: every open session ends.
    sa.Column("session_epoch", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_login_at", UtcDateTime),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

staff_login_attempts = sa.Table(
    "staff_login_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("address", sa.String(64), nullable=False),
    sa.Column("succeeded", sa.Boolean, nullable=False),
)

staff_audit = sa.Table(
    "staff_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("target", sa.String(200)),
    sa.Column("detail", sa.Text),
    sa.Column("address", sa.String(64)),
)

# Sign-in attempts per (account name, client address), counted before the password is checked
# (migration a0004_lockouts). `attempts` counts tries in the window that started at `window_start`.
staff_lockouts = sa.Table(
    "staff_lockouts",
    metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("address", sa.String(64), primary_key=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("window_start", UtcDateTime, nullable=False),
    sa.Column("locked_until", UtcDateTime),
)
