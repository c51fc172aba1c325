"""The gateway's tables: the outbox `notices` (migration 0001), its audit trail and one heartbeat row
per gateway (migrations s0002, s0015-s0018 in motcua/migrations)."""
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
    sa.Column("message_ref", sa.Integer),  # the last part's TP-MR (its delivery report completes the notice)
    sa.Column("delivery_status", sa.String(16)),  # pending, delivered, failed
    sa.Column("delivered_at", UtcDateTime),
    sa.Column("sent_at", UtcDateTime),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # s0002
    sa.Column("message_refs", sa.String(200)),  # every part's TP-MR, comma separated
    # s0016
    sa.Column("channel", sa.String(16)),  # a channels.Channel: what carried it (set when sent)
    sa.Column("provider_id", sa.String(100)),  # ZNS msg_id / brandname SMSID
    # s0017: the gateway (`station/modem`) that claimed it; only it finishes or recovers the notice
    sa.Column("holder", sa.String(100)),
)

# Who moved a notice by hand, and the gateway's own decisions worth a trail (uncertain, failed).
notice_events = sa.Table(
    "notice_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("notice_id", sa.Integer, sa.ForeignKey("notices.id", ondelete="CASCADE"), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("actor", sa.String(100)),
    sa.Column("from_state", sa.String(16)),
    sa.Column("to_state", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text),
)

# One heartbeat row per gateway (one gateway per modem: "main/modem" on a single box), written by it.
modem_health = sa.Table(
    "modem_health",
    metadata,
    sa.Column("gateway", sa.String(100), primary_key=True),
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
    sa.Column("balance_checked_at", UtcDateTime),
    sa.Column("last_seen_at", UtcDateTime),
    sa.Column("detail", sa.Text),
    sa.Column("pid", sa.Integer),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # the SIM's daily cap: parts handed to the modem on `sent_day` (local date), and until when it waits
    sa.Column("sent_day", sa.Date),
    sa.Column("sent_today", sa.Integer, nullable=False, server_default="0"),
    sa.Column("daily_cap", sa.Integer),
    sa.Column("capped_until", UtcDateTime),
)

# s0015: delivery reports that matched no sent notice: the evidence uncertain notices are resolved by.
sms_reports = sa.Table(
    "sms_reports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("phone_e164", sa.String(20)),
    sa.Column("message_ref", sa.Integer, nullable=False),
    sa.Column("delivered", sa.Boolean, nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("notice_id", sa.Integer, sa.ForeignKey("notices.id", ondelete="SET NULL")),  # resolved by it
    sa.Column("gateway", sa.String(100)),  # s0017: whose modem received it (references are per modem)
)

# Every SMS a citizen sent to the hall's number, and what the gateway did with it.
incoming_messages = sa.Table(
    "incoming_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("dedupe_key", sa.String(64), nullable=False, unique=True),  # a re-read memory slot is no new SMS
    sa.Column("phone_e164", sa.String(20)),
    sa.Column("sender", sa.String(64), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("parts", sa.Integer, nullable=False, server_default="1"),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("command", sa.String(16)),  # an IncomingCommand
    sa.Column("dossier_code", sa.String(100)),
    sa.Column("reply_notice_id", sa.Integer, sa.ForeignKey("notices.id", ondelete="SET NULL")),
    sa.Column("note", sa.Text),
)

# Numbers that texted HUY/STOP: no more notices to them.
opt_outs = sa.Table(
    "opt_outs",
    metadata,
    sa.Column("phone_e164", sa.String(20), primary_key=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("keyword", sa.String(16), nullable=False),
    sa.Column("incoming_id", sa.Integer, sa.ForeignKey("incoming_messages.id", ondelete="SET NULL")),
)

# s0018: Zalo's delivery callbacks (`user_received_message`), one row per ZNS msg_id: a replayed
# callback is the same row. Kept even before the notice is known (the callback can beat the gateway's
# write of the msg_id), and read by the SMS fallback, which never texts a notice whose row is here.
zns_receipts = sa.Table(
    "zns_receipts",
    metadata,
    sa.Column("msg_id", sa.String(100), primary_key=True),
    sa.Column("tracking_id", sa.String(64)),
    sa.Column("delivered_at", UtcDateTime),  # message.delivery_time: when the phone got it
    sa.Column("received_at", UtcDateTime, nullable=False),  # when the callback arrived
    sa.Column("notice_id", sa.Integer, sa.ForeignKey("notices.id", ondelete="SET NULL")),
)
