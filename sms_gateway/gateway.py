"""The gateway loop: one thread that owns the modem and drains the outbox.

Per notice: render the text, claim it (queued -> sending) in a committed transaction, hand it to the
modem. A crash after the claim leaves `sending`, which the next start turns into `uncertain`: the gap
SMS cannot close is made narrow and visible. The outcome of message N is written in the same
transaction that claims message N+1 (one fsync per message, not two), but never left waiting in
memory: anything that waits or talks to the modem other than a send (pacing, idling, quiet hours,
reconnects, health, balance, stopping) commits it first.
Between messages: pacing with jitter, quiet hours, modem health, delivery reports and the balance.

Several gateways, one per modem, may drain one outbox (docs/sms.md, "Several modems"): each claims
atomically under its own name (`station/modem`), recovers at start only the notices it held, makes
uncertain the notices of a gateway whose heartbeat went stale, and stops claiming for the rest of the
local day once its SIM reached [modem] daily_cap.
"""
from __future__ import annotations

import json
import logging
import os
import random
import signal
import threading
import time
from datetime import datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any, Callable

import sdnotify
import sqlalchemy as sa

from motcua import stations
from motcua.config import Config
from motcua.db import reading
from motcua.hours import site_zone
from motcua.memory import release_free_memory
from motcua.phones import InvalidPhone, normalise_vn_mobile
from motcua.timeutil import utcnow
from sms_gateway import health as h
from sms_gateway import incoming, outbox, reminders, resolve, zns_delivery
from sms_gateway.channels import Channel, Outgoing, Transport
from sms_gateway.health import ModemState
from sms_gateway.modem import AMBIGUOUS, CMS_MAX_ATTEMPTS, PERMANENT, TEMPORARY, Modem, ModemFault, Report, SendError
from sms_gateway.schedule import Clock, Schedule
from sms_gateway.text import UCS2, Rendered, render_notice

log = logging.getLogger(__name__)

EXIT_IDLE = 0
EXIT_MODEM_UNUSABLE = 2
HEARTBEAT_S = 10.0
REPORT_SWEEP_S = 300.0
READ_DEVICE_S = 1.0  # while sending back to back, read the modem for reports at most this often
CLAIM_SCAN = 50  # unsendable notices failed in one transaction before the loop gets a turn
# The gateway's periodic tasks (see Schedule).
CONNECT, HEALTH, BALANCE, SWEEP, HEARTBEAT, READ = "connect", "health", "balance", "sweep", "heartbeat", "read"
RESOLVE = "resolve"
RESOLVE_S = 30.0
REMIND = "remind"
REMIND_S = 900.0
ZNS_FALLBACK = "zns_fallback"  # ZNS notices not reported delivered: once by SMS (zns_delivery.py)
ABANDONED = "abandoned"  # other gateways' notices whose holder went silent
STATION = "station"  # this service's row in the hall's stations table (motcua/stations.py)


def in_quiet_hours(local: datetime, start: Any, end: Any) -> bool:
    """Quiet from `start` to `end` local time (may cross midnight); start == end means never quiet."""
    t = local.time()
    if start == end:
        return False
    if start < end:
        return start <= t < end
    return t >= start or t < end


def retry_delay(attempts: int, base: float, cap: float) -> float:
    """Exponential backoff with +-20 % jitter so retries of many notices do not line up."""
    delay = min(cap, base * (2 ** max(0, attempts - 1)))
    return delay * random.uniform(0.8, 1.2)


class Gateway:
    """Drains the outbox through one modem. `reap_children`: this process is the gateway alone (the
    CLI), so every child process is a modem proxy Gammu started; exited ones are collected."""

    def __init__(self, cfg: Config, engine: sa.Engine, *, modem: Modem | None = None,
                 reap_children: bool = False, clock: Clock = time.monotonic,
                 lookup: incoming.DossierLookup | None = None,
                 reminders: reminders.ReminderSource | None = None):
        self.cfg = cfg
        self.engine = engine
        # Gammu's files (gammurc, debug log, refused PIN) are per modem: two gateways on one box must
        # not share them. The default modem keeps the folder it always had.
        folder = "sms-gateway" if cfg.modem.name == h.DEFAULT_MODEM else f"sms-gateway-{cfg.modem.name}"
        workdir = Path(cfg.paths.data_dir) / folder
        self.modem = modem or Modem(cfg.modem, workdir, delivery_reports=cfg.sms.delivery_reports,
                                    text_in=cfg.sms.text_in)
        # Channel policy: ZNS first for the kinds it has a template for; SMS by the brandname provider
        # when one is configured, else by the modem (then the modem is not needed at all).
        self.zns: Transport | None = None
        self.brandname: Transport | None = None
        # Imported only when configured: both bring httpx (~8 MB), which a modem-only gateway never uses.
        if cfg.zns.enabled:
            from sms_gateway.channels.zns import ZnsTransport

            self.zns = ZnsTransport(cfg.zns, workdir)
        if cfg.brandname.enabled:
            from sms_gateway.channels.brandname import BrandnameTransport

            self.brandname = BrandnameTransport(cfg.brandname)
        self._uses_modem = self.brandname is None
        self.notifier = sdnotify.SystemdNotifier()
        self.stop_event = threading.Event()
        self.zone = site_zone(cfg.site)
        self.state = ModemState.ERROR if self._uses_modem else ModemState.OK
        self.detail = "starting" if self._uses_modem else ""
        self.name = h.gateway_id(cfg)
        self._capped_until: datetime | None = None
        self._reconnect_wait = cfg.modem.reconnect_s
        # What runs between messages, and when. All but the report sweep are due at the start.
        self.schedule = Schedule(clock)
        self.schedule.every(CONNECT, cfg.modem.reconnect_s)  # pushed back by the backoff on failure
        self.schedule.every(HEALTH, cfg.modem.health_every_s)
        self.schedule.every(BALANCE, cfg.sms.balance_every_s)
        # Right after the first send: reports stored while no gateway ran settle uncertain notices.
        self.schedule.every(SWEEP, REPORT_SWEEP_S)
        self.schedule.every(RESOLVE, RESOLVE_S)
        self.schedule.every(REMIND, REMIND_S)
        self.schedule.every(ZNS_FALLBACK, min(RESOLVE_S, cfg.zns.delivery_wait_s / 3))
        # A heartbeat well inside the staleness other gateways allow, however short it is configured.
        self.schedule.every(HEARTBEAT, min(HEARTBEAT_S, cfg.sms.holder_stale_s / 3))
        self.schedule.every(ABANDONED, min(30.0, cfg.sms.holder_stale_s / 3))
        self.schedule.every(STATION, cfg.station.heartbeat_s)
        self._started_at = utcnow()
        self.schedule.every(READ, READ_DEVICE_S)
        self._sent_since_read = False
        self._first_send_done = False  # balance and memory sweep wait for it (see the loop)
        self._status_fields: dict[str, Any] = {}
        self._reap_children = reap_children
        # The last message's outcome and delivery reports not written yet (see the module docstring).
        self._pending: list[Callable[[sa.Connection], None]] = []
        self._reports: list[tuple[str | None, Report]] = []
        # Citizens' messages (text-in): joined, stored and answered with the next transaction; their
        # memory slots are freed only after it committed.
        self.lookup = lookup
        self.reminders = reminders
        self._assembler = incoming.Assembler()
        self._texts: list[incoming.Message] = []
        self.stats = {"sent": 0, "failed": 0, "retry": 0, "uncertain": 0}

    # --- lifecycle --------------------------------------------------------------------------
    def run(self, *, until_idle: bool = False, handle_signals: bool = False) -> int:
        """Drain the outbox until stopped (or, with until_idle, until nothing is due). Returns the exit code."""
        if handle_signals:
            self._install_signals()
        with self.engine.begin() as conn:
            # Alive before anything (other gateways judge it by this row), in the recovery's transaction.
            h.write_modem_health(conn, self.name, **self._heartbeat_fields())
            interrupted = outbox.recover_interrupted(conn, self.name)
        self.schedule.done(HEARTBEAT)
        if interrupted:
            log.warning("%d notice(s) were being sent when gateway %s stopped; marked uncertain: %s",
                        len(interrupted), self.name, interrupted)
        release_free_memory()  # start-up's garbage back to the system before hours of idling
        self.notifier.notify("READY=1")
        self._set_status("started")
        code = EXIT_IDLE
        try:
            code = self._loop(until_idle)
        finally:
            self.notifier.notify("STOPPING=1")
            try:
                self._flush()  # if this fails the notice stays `sending`: uncertain at the next start
            finally:
                self.modem.close()
                for transport in (self.zns, self.brandname):
                    if transport is not None:
                        transport.close()
                self._reap()
                self._heartbeat(force=True)
        return code

    def stop(self) -> None:
        self.stop_event.set()

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    def _sleep(self, seconds: float) -> None:
        """Sleep in watchdog-sized slices, waking at once on stop. Results are written first."""
        if seconds <= 0:
            return
        self._flush()
        end = time.monotonic() + seconds
        while not self.stop_event.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return
            self.notifier.notify("WATCHDOG=1")
            self.stop_event.wait(min(left, 5.0))

    # --- the loop ---------------------------------------------------------------------------
    def _loop(self, until_idle: bool) -> int:
        failed_connects = 0
        schedule = self.schedule
        while not self.stop_event.is_set():
            self.notifier.notify("WATCHDOG=1")
            self._heartbeat()
            if schedule.due(ABANDONED):
                self._sweep_abandoned()
            if self._uses_modem and not self.modem.connected:
                if not schedule.due(CONNECT):
                    if until_idle and not self._has_due():
                        return EXIT_IDLE
                    self._sleep(min(schedule.wait_s(CONNECT), self.cfg.sms.poll_s))
                    continue
                if not self._connect():
                    failed_connects += 1
                    # A SIM that wants its PIN (none configured, or the configured one was refused and is
                    # not tried again) gives the same answer at a second try: a one-shot run stops at once.
                    settled = self.state == ModemState.PIN_REQUIRED
                    if until_idle and (failed_connects >= 2 or settled or not self._has_due()):
                        return EXIT_MODEM_UNUSABLE if self._has_due() else EXIT_IDLE
                    continue
                failed_connects = 0
            if self._uses_modem and schedule.due(HEALTH) and not self._check_health():
                if until_idle:
                    return EXIT_MODEM_UNUSABLE if self._has_due() else EXIT_IDLE
                continue
            self._read_reports(schedule.due(READ))
            # Slow work waits for the first send of this start (or an empty queue): a notice claimed
            # late is a notice a crash or watchdog restart can leave uncertain.
            if schedule.due(SWEEP) and self._first_send_done:
                self._sweep()
            if schedule.due(RESOLVE) and self._first_send_done:
                self._resolve()
            if schedule.due(ZNS_FALLBACK) and self._first_send_done:
                self._zns_fallback()
            if schedule.due(BALANCE) and self.cfg.sms.balance_ussd and self._first_send_done:
                self._check_balance()
            self._heartbeat()
            if self.state != ModemState.OK:
                if until_idle:
                    return EXIT_MODEM_UNUSABLE if self._has_due() else EXIT_IDLE
                self._sleep(self.cfg.sms.poll_s)
                continue
            if self._at_daily_cap():
                if until_idle:
                    return EXIT_IDLE
                self._sleep(min(60.0, self.cfg.sms.poll_s * 10))
                continue
            local = utcnow().astimezone(self.zone)
            quiet = in_quiet_hours(local, self.cfg.sms.quiet_start, self.cfg.sms.quiet_end)
            if schedule.due(REMIND) and self._first_send_done and not quiet:
                self._remind(local.date())
            if quiet:
                if until_idle:
                    return EXIT_IDLE
                self._set_status(f"quiet hours until {self.cfg.sms.quiet_end:%H:%M}")
                self._sleep(min(60.0, self.cfg.sms.poll_s * 10))
                continue
            attempted = self.send_one()
            self._first_send_done = True
            if attempted is None:
                if self._sent_since_read:  # a report for the last message may be waiting in the modem
                    self._read_reports(True)
                    self._flush()
                if schedule.due(BALANCE) and self.cfg.sms.balance_ussd:  # idle now: the slow work's turn
                    self._check_balance()
                if until_idle:
                    if schedule.due(SWEEP):
                        self._sweep()
                    if schedule.due(REMIND):
                        self._remind(local.date())
                    if self.cfg.sms.delivery_reports and self._resolve():
                        continue  # an uncertain notice was queued again
                    if self._zns_fallback():
                        continue  # a ZNS notice never reported delivered goes by SMS now
                    if self._has_due():
                        continue  # an answer to a citizen's message read just now
                    return EXIT_IDLE
                self._sleep(self.cfg.sms.poll_s)
            elif attempted:
                self._sleep(self.cfg.sms.pace_s + random.uniform(0, self.cfg.sms.pace_jitter_s))
        return EXIT_IDLE

    def _sweep_abandoned(self) -> None:
        self.schedule.done(ABANDONED)
        stale_s = self.cfg.sms.holder_stale_s
        try:
            with reading(self.engine) as conn:  # almost always nothing: no write lock, no fsync
                if not outbox.find_abandoned(conn, me=self.name, stale_s=stale_s):
                    return
            with self.engine.begin() as conn:
                swept = outbox.sweep_abandoned(conn, me=self.name, stale_s=stale_s)
        except sa.exc.SQLAlchemyError as exc:  # the next turn tries again
            log.warning("could not look for abandoned notices: %s", exc)
            return
        if swept:
            log.warning("notice(s) %s held by a gateway silent for more than %g s: marked uncertain",
                        swept, self.cfg.sms.holder_stale_s)

    def _at_daily_cap(self) -> bool:
        """The SIM reached its cap today: nothing is claimed until local midnight (other gateways go on)."""
        if self._capped_until is None:
            return False
        if utcnow() < self._capped_until:
            return True
        log.info("gateway %s: a new day, the SIM's daily cap starts again", self.name)
        self._capped_until = None
        self._write_health(capped_until=None)
        return False

    def _next_midnight(self) -> datetime:
        today = utcnow().astimezone(self.zone).date()
        return datetime.combine(today + timedelta(days=1), dtime(0), self.zone)

    def _has_due(self) -> bool:
        self._flush()
        with reading(self.engine) as conn:
            return bool(outbox.due(conn, utcnow(), limit=1))

    # --- writing results --------------------------------------------------------------------
    def _flush(self) -> None:
        """Write the last message's outcome and the delivery reports now, in their own transaction."""
        if not self._pending and not self._reports and not self._texts:
            return
        with self.engine.begin() as conn:
            matched = self._write_pending(conn)
        self._written(matched)

    def _write_pending(self, conn: sa.Connection) -> list[tuple[Report, int | None]]:
        for write in self._pending:
            write(conn)
        # After the outcomes: a report may be for the message whose `sent` was just written.
        matched = []
        for number, report in self._reports:
            notice_id = outbox.record_delivery(conn, phone_e164=number, message_ref=report.reference,
                                               delivered=bool(report.delivered), holder=self.name)
            if notice_id is None:
                resolve.record_unmatched_report(conn, phone_e164=number, message_ref=report.reference,
                                                delivered=bool(report.delivered), gateway=self.name)
            matched.append((report, notice_id))
        sms = self.cfg.sms
        for message in self._texts:
            incoming.handle(conn, message, lookup=self.lookup, replies_per_hour=sms.text_in_replies_per_hour)
        return matched

    def _written(self, matched: list[tuple[Report, int | None]]) -> None:
        """The transaction holding the pending writes committed."""
        self._pending.clear()
        stored = [r.location for _, r in self._reports if r.location is not None]
        self._reports.clear()
        if self._texts:
            log.info("%d incoming message(s) stored", len(self._texts))
            stored += [p.location for m in self._texts for p in m.parts]
            self._texts.clear()
        if stored:
            self.modem.delete_stored(stored)
        for report, notice_id in matched:
            log.info("delivery report ref %s: %s -> notice %s", report.reference,
                     "delivered" if report.delivered else "failed", notice_id)

    # --- modem state ------------------------------------------------------------------------
    def _connect(self) -> bool:
        self._flush()
        self._reap()
        try:
            info = self.modem.connect()
        except ModemFault as fault:
            self._fault(fault)
            self.schedule.done(CONNECT, again_after_s=self._reconnect_wait)
            self._reconnect_wait = min(300.0, self._reconnect_wait * 2)
            return False
        self._reconnect_wait = self.cfg.modem.reconnect_s
        self._status_fields.update(model=info.get("model"), imei=info.get("imei"))
        self.schedule.now(HEALTH)
        log.info("modem connected: %s", info.get("model") or self.cfg.modem.model)
        return True

    def _check_health(self) -> bool:
        self._flush()
        try:
            status = self.modem.status()
        except ModemFault as fault:
            self._fault(fault)
            self.schedule.done(HEALTH, again_after_s=self.cfg.modem.reconnect_s)
            if not self.modem.connected:
                self.schedule.done(CONNECT, again_after_s=self._reconnect_wait)
            return False
        self._status_fields.update(status)
        self.schedule.done(HEALTH)
        if self.state != ModemState.OK:
            log.info("modem ready: network %s, signal %s%%", status.get("network"), status.get("signal_percent"))
        self.state, self.detail = ModemState.OK, ""
        self._heartbeat(force=True)
        return True

    def _fault(self, fault: ModemFault) -> None:
        if (fault.state, fault.detail) != (self.state, self.detail):
            log.warning("modem %s: %s", fault.state, fault.detail)
        self.state, self.detail = fault.state, fault.detail
        # What was seen before the fault is no longer true: staff must not read "Viettel, 60 %"
        # from before an outage.
        self._status_fields.update(network=None, signal_percent=None,
                                   registered=False if fault.state == ModemState.NO_NETWORK else None)
        self._set_status(f"modem {fault.state}: {fault.detail}")
        self._heartbeat(force=True)

    def _heartbeat(self, force: bool = False) -> None:
        if not force and not self.schedule.due(HEARTBEAT):
            return
        self.schedule.done(HEARTBEAT)
        self._write_health(**self._heartbeat_fields())
        if self.schedule.due(STATION):
            self.schedule.done(STATION)
            try:
                stations.heartbeat(self.engine, self.cfg.station, f"sms-gateway/{self.cfg.modem.name}",
                                   device="modem", device_state=str(self.state), detail=self.detail or None,
                                   started_at=self._started_at)
            except sa.exc.SQLAlchemyError as exc:
                log.warning("could not write the station heartbeat: %s", exc)

    def _heartbeat_fields(self) -> dict[str, Any]:
        fields = {k: v for k, v in self._status_fields.items()
                  if k in ("sim", "registered", "network", "signal_percent", "model", "imei")}
        return dict(state=self.state, detail=self.detail or None, last_seen_at=utcnow(),
                    daily_cap=self.cfg.modem.daily_cap or None, **fields)

    def _write_health(self, **fields: Any) -> None:
        try:
            with self.engine.begin() as conn:
                h.write_modem_health(conn, self.name, **fields)
        except sa.exc.SQLAlchemyError as exc:  # the database being busy must not stop sending
            log.warning("could not write the modem heartbeat: %s", exc)

    def _reap(self) -> None:
        """Collect modem proxy processes that Gammu's proxyat left behind (some Gammu versions only
        SIGHUP them on close and never wait). Called only while no connection is open, so Gammu will
        not signal any of these pids again (a reaped pid may be reused)."""
        if not self._reap_children or self.modem.connected:
            return
        while True:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            log.debug("reaped modem proxy process %d", pid)

    def _set_status(self, text: str) -> None:
        self.notifier.notify(f"STATUS={text[:200]}")

    def _remind(self, today: Any) -> None:
        """Queue the reminders due today (sms_gateway/reminders.py); never during quiet hours, so an
        appointment reminder does not wait until the morning of the appointment."""
        self.schedule.done(REMIND)
        sms = self.cfg.sms
        if self.reminders is None or not (sms.reminder_appointment or sms.reminder_uncollected_days):
            return
        self._flush()
        with self.engine.begin() as conn:
            due = self.reminders(conn, today, sms.reminder_uncollected_days, self.cfg.site.timezone,
                                 sms.reminder_appointment)
            queued = reminders.queue_reminders(conn, due)
        if queued:
            log.info("%d reminder(s) queued", len(queued))

    def _sweep(self) -> None:
        """Read what the modem kept in memory (reports, incoming SMS) and write it at once."""
        self._flush()
        self.schedule.done(SWEEP)
        self._take_reports(self.modem.sweep_stored())
        self._flush()

    def _resolve(self) -> bool:
        """Settle uncertain notices by the delivery reports (sms_gateway/resolve.py); True when one
        was queued again."""
        self._flush()
        self.schedule.done(RESOLVE)
        if not self.cfg.sms.delivery_reports:
            return False
        sms = self.cfg.sms
        with reading(self.engine) as conn:
            if not resolve.has_uncertain(conn):
                return False  # the usual case: no write transaction (and no fsync) for nothing
        with self.engine.begin() as conn:
            done = resolve.resolve_uncertain(conn, window_s=sms.resolve_window_s, wait_s=sms.resolve_wait_s,
                                             min_reports=sms.resolve_min_reports, holder=self.name)
        for ids, what in ((done.marked_sent, "marked sent by delivery reports"),
                          (done.resent, "sent again once (no report while later ones arrived)"),
                          (done.half_sent, "half-sent by their delivery reports; left to an official")):
            if ids:
                log.warning("uncertain notice(s) %s %s", ids, what)
        return bool(done.resent)

    def _zns_fallback(self) -> bool:
        """Queue for SMS, once, the ZNS notices Zalo has not reported delivered in time; True when one was."""
        self.schedule.done(ZNS_FALLBACK)
        zns = self.cfg.zns
        if self.zns is None or not zns.delivery_callbacks:
            return False
        self._flush()
        with reading(self.engine) as conn:
            if not zns_delivery.has_undelivered(conn, zns.delivery_wait_s):
                return False  # the usual case: no write transaction
        with self.engine.begin() as conn:
            queued = zns_delivery.fall_back_to_sms(conn, zns.delivery_wait_s, actor=f"gateway {self.name}")
        if queued:
            log.warning("ZNS notice(s) %s not reported delivered within %g s: sent once by SMS", queued,
                        zns.delivery_wait_s)
        return bool(queued)

    def _check_balance(self) -> None:
        sms = self.cfg.sms
        self._flush()
        self.schedule.done(BALANCE)
        answer = self.modem.ussd(sms.balance_ussd)
        if answer is None:
            log.warning("no answer to the balance USSD %s", sms.balance_ussd)
            return
        amount = h.parse_balance(answer, sms.balance_pattern)
        low = h.balance_is_low(amount, sms.balance_low_below)
        if low:
            log.warning("prepaid balance low: %s", answer)
        with self.engine.begin() as conn:
            h.write_modem_health(conn, self.name, balance_text=answer[:500], balance_amount=amount,
                                 balance_low=low, balance_checked_at=utcnow())

    def _read_reports(self, read_device: bool) -> None:
        """Take the delivery reports the modem announced; ReadDevice (tens of ms) at most every
        READ_DEVICE_S while sending back to back: Gammu also hands reports over during each send."""
        if read_device:
            self.schedule.done(READ)
            self._sent_since_read = False
        self._take_reports(self.modem.poll(read=read_device))

    def _take_reports(self, reports: list[Report]) -> None:
        """Keep final reports for the next transaction (they may be for the message just sent), and
        the citizens' messages read with them."""
        texts = self.modem.take_texts()
        if self.cfg.sms.text_in:  # otherwise they stay in the modem's memory, untouched
            self._texts.extend(self._assembler.add(texts))
        for report in reports:
            if report.delivered is None:
                if report.location is not None:  # nothing to write: free its slot now
                    self.modem.delete_stored([report.location])
                continue
            try:
                number = normalise_vn_mobile(report.number) if report.number else None
            except InvalidPhone:
                number = None
            self._reports.append((number, report))

    # --- one notice ---------------------------------------------------------------------------
    def send_one(self) -> bool | None:
        """Send the oldest due notice. None: nothing due; False: skipped; True: the modem was used."""
        with self.engine.begin() as conn:
            matched = self._write_pending(conn)  # the previous message's outcome: same fsync as the claim
            claimed = self._claim_next(conn)
        self._written(matched)
        if not claimed:
            return claimed
        row, number, rendered = claimed
        try:
            channel, refs, provider_id = self._send(row, number, rendered)
        except SendError as err:
            self._record_failure(row, err)
        else:
            notice_id, reports = row.id, self.cfg.sms.delivery_reports and channel == Channel.MODEM
            was_zns, awaiting = row.channel == Channel.ZNS, self.cfg.zns.delivery_callbacks
            webhook = awaiting or bool(self.cfg.zns.oa_secret_key)

            def write(conn: sa.Connection) -> None:
                if not outbox.mark_sent(conn, notice_id, refs, delivery_reports=reports, holder=self.name):
                    log.warning("notice %s went out, but another gateway had already marked it uncertain "
                                "(this one was silent too long); an official decides", notice_id)
                if channel != Channel.MODEM or was_zns:  # NULL: the modem (also after a ZNS fallback)
                    conn.execute(outbox.notices.update().where(outbox.notices.c.id == notice_id)
                                 .values(channel=None if channel == Channel.MODEM else channel,
                                         provider_id=provider_id))
                if channel == Channel.ZNS and webhook:  # no webhook: no callback to look for
                    zns_delivery.after_zns_sent(conn, notice_id, provider_id or "", awaiting=awaiting)
            self._pending.append(write)
            self.stats["sent"] += 1
            if log.isEnabledFor(logging.INFO):
                log.info("notice %s sent to %s by %s (%d part(s), %s, ref %s)", row.id, number[:-3] + "***",
                         channel, rendered.parts, rendered.encoding, refs or provider_id)
        self._sent_since_read = True
        return True

    def _send(self, row: Any, number: str, rendered: Rendered) -> tuple[Channel, list[int], str | None]:
        """The channel policy: ZNS first where it has a template, SMS when ZNS refuses or fails; SMS by
        the brandname provider or the modem. Raises SendError."""
        out = Outgoing(row.id, row.idempotency_key, number, row.kind, json.loads(row.params or "{}"),
                       rendered.text, rendered.encoding == UCS2)
        for transport in (self.zns, self.brandname):
            if transport is None or not transport.accepts(out):
                continue
            if transport is self.zns and row.channel == Channel.ZNS:
                continue  # ZNS carried it and was not reported delivered: this is its one SMS
            try:
                return transport.channel, [], transport.send(out)
            except SendError as err:
                if err.outcome == AMBIGUOUS:
                    # The provider recognises the resend (tracking_id / RequestId): retry, not uncertain.
                    raise SendError(TEMPORARY, f"{transport.channel}: {err.detail}") from None
                if transport is self.brandname:
                    raise SendError(err.outcome, f"{transport.channel}: {err.detail}") from None
                log.warning("notice %s: %s failed (%s); sending by SMS", row.id, transport.channel, err.detail)
        refs = self.modem.send(number, rendered, smsc=self.cfg.modem.smsc, timeout_s=self.cfg.modem.send_timeout_s)
        return Channel.MODEM, refs, None

    def _claim_next(self, conn: sa.Connection) -> tuple[Any, str, Rendered] | bool | None:
        """Claim the oldest due notice that can be sent; notices that never can are failed on the way.
        None: nothing due (or the SIM is at its daily cap); False: only unsendable ones this time (the
        loop comes back at once)."""
        for _ in range(CLAIM_SCAN):
            rows = outbox.due_to_claim(conn, utcnow(), limit=1)
            if not rows:
                return None
            row = rows[0]
            try:
                # phone_e164 is only ever stored by normalise_vn_mobile (enqueue, staff retry).
                number = row.phone_e164 or normalise_vn_mobile(row.phone_raw)
                if row.text:  # a retry sends exactly the text already recorded
                    rendered = Rendered(row.text, row.encoding, row.parts)
                else:
                    rendered = render_notice(self.cfg, row.kind, json.loads(row.params or "{}"))
            except InvalidPhone as exc:
                self._unsendable(conn, row.id, f"invalid phone number: {exc}")
                continue
            except (ValueError, KeyError) as exc:
                self._unsendable(conn, row.id, f"cannot write the text: {exc}")
                continue
            today = utcnow().astimezone(self.zone).date()
            cap = self.cfg.modem.daily_cap
            if cap and h.parts_sent_on(conn, self.name, today) + rendered.parts > cap:
                self._capped_until = self._next_midnight()
                h.write_modem_health(conn, self.name, capped_until=self._capped_until)
                log.warning("gateway %s: the SIM's daily cap of %d part(s) is reached; no more claims until %s",
                            self.name, cap, self._capped_until.isoformat())
                return None
            if outbox.claim(conn, row.id, phone_e164=number, text=rendered.text,
                            encoding=rendered.encoding, parts=rendered.parts, holder=self.name):
                h.count_parts(conn, self.name, today, rendered.parts)  # also the heartbeat
                return row, number, rendered
        return False

    def _unsendable(self, conn: sa.Connection, notice_id: int, reason: str) -> None:
        log.warning("notice %s failed: %s", notice_id, reason)
        outbox.fail_unsendable(conn, notice_id, reason)
        self.stats["failed"] += 1

    def _record_failure(self, row: Any, err: SendError) -> None:
        """Decide the notice's next state now; it is written with the next transaction."""
        attempts = row.attempts + 1
        notice_id = row.id
        write: Callable[[sa.Connection], None]
        if err.outcome == AMBIGUOUS:
            refs = ",".join(map(str, err.accepted_refs)) or None

            def write(conn: sa.Connection) -> None:
                if refs:
                    conn.execute(outbox.notices.update().where(outbox.notices.c.id == notice_id)
                                 .values(message_refs=refs))
                outbox.mark_uncertain(conn, notice_id, err.detail, self.name)
            self.stats["uncertain"] += 1
        elif err.outcome == PERMANENT:
            def write(conn: sa.Connection) -> None:
                outbox.mark_failed(conn, notice_id, err.detail, err.cms_code, self.name)
            self.stats["failed"] += 1
        elif attempts >= min(self.cfg.sms.max_attempts, CMS_MAX_ATTEMPTS.get(err.cms_code, self.cfg.sms.max_attempts)):
            def write(conn: sa.Connection) -> None:
                outbox.mark_failed(conn, notice_id, f"gave up after {attempts} attempts: {err.detail}",
                                   err.cms_code, self.name)
            self.stats["failed"] += 1
        else:
            at = utcnow() + timedelta(seconds=retry_delay(attempts, self.cfg.sms.retry_base_s,
                                                          self.cfg.sms.retry_max_s))

            def write(conn: sa.Connection) -> None:
                outbox.mark_retry(conn, notice_id, err.detail, err.cms_code, at, self.name)
            self.stats["retry"] += 1
        self._pending.append(write)
        log.warning("notice %s %s: %s", row.id, {AMBIGUOUS: "uncertain", PERMANENT: "failed"}.get(
            err.outcome, "will be retried"), err.detail)
        if err.modem_lost:
            # Re-read the modem before the next notice; a lost connection is rebuilt.
            self.schedule.now(HEALTH)
            if not self.modem.connected:
                self.state, self.detail = ModemState.ERROR, err.detail
                self.schedule.now(CONNECT)
