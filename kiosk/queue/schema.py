"""Queue tables (created by migration p0003 in motcua/migrations), and the ticket states."""
from enum import StrEnum

import sqlalchemy as sa

from motcua.timeutil import UtcDateTime

metadata = sa.MetaData()

# The last number handed out per service and local day. Taking a ticket is one
# INSERT ... ON CONFLICT DO UPDATE ... RETURNING on this row: atomic on SQLite (the write lock is
# taken at BEGIN IMMEDIATE) and on PostgreSQL (the conflicting row is locked), so concurrent
# kiosks and web workers get distinct, consecutive numbers. A new day is a new row: numbering
# restarts at local midnight without any job.
queue_counters = sa.Table(
    "queue_counters",
    metadata,
    sa.Column("service_code", sa.String(8), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("last_number", sa.Integer, nullable=False),
)



class TicketState(StrEnum):
    """waiting -> called -> done | skipped; a transfer keeps the label and re-queues the ticket
    under another service (waiting again, transferred_from set)."""
    WAITING = "waiting"
    CALLED = "called"
    DONE = "done"
    SKIPPED = "skipped"


queue_tickets = sa.Table(
    "queue_tickets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("issued_service", sa.String(8), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("label", sa.String(16), nullable=False),
    sa.Column("service_code", sa.String(8), nullable=False),  # current service (changes on transfer)
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("counter", sa.String(16)),
    sa.Column("call_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("transferred_from", sa.String(8)),
    sa.Column("issued_at", UtcDateTime, nullable=False),
    sa.Column("queued_at", UtcDateTime, nullable=False),
    sa.Column("called_at", UtcDateTime),
    sa.Column("finished_at", UtcDateTime),
    # Decree 107/2021: the elderly, people with disabilities, pregnant women (migration v0002).
    sa.Column("priority", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("issued_service", "day", "number", name="uq_queue_tickets_number"),
)

# Every call and recall, in order: the hall display announces each new row once.
queue_calls = sa.Table(
    "queue_calls",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("ticket_id", sa.Integer, sa.ForeignKey("queue_tickets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("label", sa.String(16), nullable=False),
    sa.Column("service_code", sa.String(8), nullable=False),
    sa.Column("counter", sa.String(16), nullable=False),
    sa.Column("recall", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("called_at", UtcDateTime, nullable=False),
)
