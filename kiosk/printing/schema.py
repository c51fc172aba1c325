"""Print tables (created by migration p0002 in motcua/migrations)."""
import sqlalchemy as sa

from motcua.timeutil import UtcDateTime

metadata = sa.MetaData()

# print_jobs.state holds a kiosk.printing.states.JobState; printer_status.state a PrinterState.

print_jobs = sa.Table(
    "print_jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # ticket | slip | test
    sa.Column("ref", sa.String(100)),  # ticket label or dossier code, for staff and logs
    sa.Column("payload", sa.Text, nullable=False),  # JSON: what to print, captured at submit time
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("source", sa.String(32)),
    # The station ([station] id) whose printer prints it: the kiosk that asked (migration p0004).
    sa.Column("station", sa.String(32), nullable=False, server_default="main"),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("printed_at", UtcDateTime),
    # The page's idempotency key (migration v0002): a double tap on "In phiếu" is one job.
    sa.Column("request_key", sa.String(64), unique=True),
)

# One row per station's printer (a single Pi: station "main"), written by that station's print worker.
printer_status = sa.Table(
    "printer_status",
    metadata,
    sa.Column("station", sa.String(32), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),  # ok | paper_low | paper_out | offline | unknown
    sa.Column("detail", sa.Text),
    sa.Column("changed_at", UtcDateTime, nullable=False),
    sa.Column("heartbeat_at", UtcDateTime, nullable=False),
)
