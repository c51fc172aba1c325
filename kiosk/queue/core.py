"""The hall queue: taking a number, counters calling tickets, and what the hall display shows.

All functions take an open connection inside a write transaction (`engine.begin()`) where they
write; callers own the transaction so that, for example, a ticket and its print job are committed
together. Days are local days in `[site] timezone`: numbering restarts at local midnight.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timezone
from typing import Any, Sequence

import sqlalchemy as sa

from kiosk.queue.schema import TicketState, queue_calls, queue_counters, queue_tickets
from motcua.config import Config
from motcua.hours import site_zone
from motcua.timeutil import utcnow


@dataclass(frozen=True)
class Service:
    code: str
    name_vi: str
    name_en: str
    prefix: str
    counters: tuple[str, ...]


@dataclass(frozen=True)
class Ticket:
    """A number handed to a citizen (what the kiosk shows and the ticket printer prints)."""

    id: int
    label: str
    number: int
    service_code: str
    service_name_vi: str
    service_name_en: str
    waiting_ahead: int
    estimated_wait_min: int
    issued_at: datetime
    day: date
    priority: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["issued_at"] = self.issued_at.isoformat()
        d["day"] = self.day.isoformat()
        return d


@dataclass(frozen=True)
class CalledTicket:
    id: int
    label: str
    service_code: str
    counter: str
    call_count: int
    transferred_from: str | None = None


class QueueError(Exception):
    """An action an official asked for that cannot be done now (told to them in plain words)."""


class QueueFull(Exception):
    """No ticket can be handed out now: `reason` is "numbers" (today's numbers of the service ran past
    `[queue] number_digits`) or "waiting" (`[queue] max_waiting` people already wait)."""

    def __init__(self, reason: str, service: str):
        super().__init__(f"{service}: {reason}")
        self.reason = reason
        self.service = service


# --- services and days ------------------------------------------------------------------------

def list_services(cfg: Config) -> list[Service]:
    return [Service(s.code, s.name_vi, s.name_en, s.prefix, tuple(s.counters)) for s in cfg.queue.services]


def get_service(cfg: Config, code: str) -> Service:
    """The service with this code (or ticket prefix), case-insensitive; LookupError if none."""
    key = (code or "").strip().upper()
    for svc in list_services(cfg):
        if key in (svc.code, svc.prefix):
            return svc
    raise LookupError(f"unknown service {code!r}")


def list_counters(cfg: Config) -> list[str]:
    """Every counter named by some service, in the order they first appear."""
    seen: dict[str, None] = {}
    for svc in cfg.queue.services:
        for c in svc.counters:
            seen.setdefault(c, None)
    return list(seen)


def services_at_counter(cfg: Config, counter: str) -> list[Service]:
    found = [s for s in list_services(cfg) if counter in s.counters]
    if not found:
        raise LookupError(f"unknown counter {counter!r}")
    return found


def local_day(cfg: Config, now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(site_zone(cfg.site)).date()


def day_start_utc(cfg: Config, day: date) -> datetime:
    return datetime.combine(day, time(0), site_zone(cfg.site)).astimezone(timezone.utc)


def format_label(prefix: str, number: int, digits: int) -> str:
    return f"{prefix}{number:0{digits}d}"


# --- taking a number --------------------------------------------------------------------------

def _next_number(conn: sa.Connection, service_code: str, day: date) -> int:
    """Atomically bump the (service, day) counter row and return the new number."""
    # Each dialect's own insert (ON CONFLICT), imported here: a kiosk on SQLite never loads the
    # PostgreSQL dialect (~3 MB in the web worker).
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - the appliance supports SQLite and PostgreSQL only
        raise RuntimeError(f"unsupported database {conn.dialect.name}")
    stmt = insert(queue_counters).values(service_code=service_code, day=day, last_number=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[queue_counters.c.service_code, queue_counters.c.day],
        set_={"last_number": queue_counters.c.last_number + 1},
    ).returning(queue_counters.c.last_number)
    return int(conn.execute(stmt).scalar_one())


def take_ticket(conn: sa.Connection, cfg: Config, service_code: str, *, now: datetime | None = None,
                priority: bool = False) -> Ticket:
    """Hand out the next number of a service for today; `priority`: the elderly, people with
    disabilities, pregnant women (Decree 107/2021), called first by `priority_due`'s policy. Raises
    LookupError for an unknown service, QueueFull when the service's numbers for today are used up or
    too many people wait."""
    svc = get_service(cfg, service_code)
    now = now or utcnow()
    day = local_day(cfg, now)
    if waiting_count(conn, cfg, svc.code, now=now) >= cfg.queue.max_waiting:
        raise QueueFull("waiting", svc.code)
    number = _next_number(conn, svc.code, day)
    if number >= 10 ** cfg.queue.number_digits:  # "B1005" would not fit the display or the ticket
        raise QueueFull("numbers", svc.code)  # the caller's rollback also undoes the counter bump
    label = format_label(svc.prefix, number, cfg.queue.number_digits)
    ticket_id = conn.execute(
        sa.insert(queue_tickets).values(
            day=day, issued_service=svc.code, number=number, label=label, service_code=svc.code,
            state=TicketState.WAITING, issued_at=now, queued_at=now, priority=priority,
        ).returning(queue_tickets.c.id)
    ).scalar_one()
    ahead = people_ahead(conn, cfg, svc.code, ticket_id, day)
    return Ticket(
        id=ticket_id, label=label, number=number, service_code=svc.code, service_name_vi=svc.name_vi,
        service_name_en=svc.name_en, waiting_ahead=ahead,
        estimated_wait_min=estimate_wait_min(conn, cfg, svc.code, ahead), issued_at=now, day=day,
        priority=priority,
    )


def waiting_count(conn: sa.Connection, cfg: Config, service_code: str, *, now: datetime | None = None) -> int:
    day = local_day(cfg, now)
    return int(conn.execute(
        sa.select(sa.func.count()).select_from(queue_tickets).where(
            queue_tickets.c.day == day, queue_tickets.c.service_code == service_code,
            queue_tickets.c.state == TicketState.WAITING)
    ).scalar_one())


def average_service_min(conn: sa.Connection, cfg: Config, service_code: str) -> float:
    """Mean minutes from call to finish over the service's most recent served tickets."""
    rows = conn.execute(
        sa.select(queue_tickets.c.called_at, queue_tickets.c.finished_at)
        .where(queue_tickets.c.service_code == service_code, queue_tickets.c.state == TicketState.DONE,
               queue_tickets.c.called_at.is_not(None), queue_tickets.c.finished_at.is_not(None))
        .order_by(queue_tickets.c.finished_at.desc())
        .limit(cfg.queue.estimate_window)
    ).all()
    # A ticket left open over lunch or finished by a stray click would skew the mean: clamp.
    minutes = [min(max((f - c).total_seconds() / 60, 0.5), 60.0) for c, f in rows]
    return sum(minutes) / len(minutes) if minutes else cfg.queue.default_service_min


def estimate_wait_min(conn: sa.Connection, cfg: Config, service_code: str, ahead: int) -> int:
    """Minutes until a citizen with `ahead` people before them is called (rounded up)."""
    if ahead <= 0:
        return 0
    svc = get_service(cfg, service_code)
    counters = max(1, len(svc.counters))
    return math.ceil(ahead * average_service_min(conn, cfg, service_code) / counters)


# --- counters ----------------------------------------------------------------------------------

def current_ticket(conn: sa.Connection, counter: str) -> sa.RowMapping | None:
    return conn.execute(
        sa.select(queue_tickets).where(queue_tickets.c.counter == counter, queue_tickets.c.state == TicketState.CALLED)
        .order_by(queue_tickets.c.called_at.desc()).limit(1)
    ).mappings().first()


def _record_call(conn: sa.Connection, row: Any, counter: str, now: datetime, recall: bool) -> None:
    conn.execute(sa.insert(queue_calls).values(
        ticket_id=row["id"], label=row["label"], service_code=row["service_code"], counter=counter,
        recall=recall, called_at=now))


def call_next(conn: sa.Connection, cfg: Config, counter: str, *, now: datetime | None = None) -> CalledTicket | None:
    """Finish the counter's current ticket and call the longest-waiting one it serves (None: nobody)."""
    codes = [s.code for s in services_at_counter(cfg, counter)]
    now = now or utcnow()
    conn.execute(
        sa.update(queue_tickets).where(queue_tickets.c.counter == counter, queue_tickets.c.state == TicketState.CALLED)
        .values(state=TicketState.DONE, finished_at=now))
    day = local_day(cfg, now)
    for _ in range(5):  # another counter may take the same ticket between select and update
        waiting = [queue_tickets.c.day == day, queue_tickets.c.state == TicketState.WAITING,
                   queue_tickets.c.service_code.in_(codes)]
        if priority_due(conn, cfg, codes, day):
            waiting.append(queue_tickets.c.priority.is_(True))
        query = (
            sa.select(queue_tickets).where(*waiting)
            .order_by(queue_tickets.c.queued_at, queue_tickets.c.id).limit(1)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        row = conn.execute(query).mappings().first()
        if row is None:
            return None
        taken = conn.execute(
            sa.update(queue_tickets)
            .where(queue_tickets.c.id == row["id"], queue_tickets.c.state == TicketState.WAITING)
            .values(state=TicketState.CALLED, counter=counter, called_at=now, call_count=1)).rowcount
        if taken:
            _record_call(conn, row, counter, now, recall=False)
            return CalledTicket(row["id"], row["label"], row["service_code"], counter, 1, row["transferred_from"])
    raise QueueError("busy")


def last_service_at(conn: sa.Connection, counter: str) -> str | None:
    """The service of the ticket this counter called last (a rating at the counter is about it)."""
    return conn.execute(sa.select(queue_calls.c.service_code).where(queue_calls.c.counter == counter)
                        .order_by(queue_calls.c.id.desc()).limit(1)).scalar()


def priority_turn(recent: Sequence[bool], every: int) -> bool:
    """The calling-order rule, `[queue] priority_every` = N: with a priority ticket waiting, it is called
    now when none of the last N calls (`recent`: their priority flags, newest first) was a priority one
    (N = 0: priority tickets always first). Otherwise the longest-waiting ticket of either kind is
    called. With both queues long, that is one priority ticket for every N regular ones."""
    return every <= 0 or not any(recent[:every])


def _recent_calls(conn: sa.Connection, codes: list[str], day: date, n: int) -> list[bool]:
    """Priority flags of the last `n` calls (not recalls) of these services today, newest first."""
    if n <= 0:
        return []
    return [bool(p) for p in conn.execute(
        sa.select(queue_tickets.c.priority).select_from(queue_calls.join(queue_tickets))
        .where(queue_tickets.c.day == day, queue_calls.c.service_code.in_(codes), queue_calls.c.recall.is_(False))
        .order_by(queue_calls.c.id.desc()).limit(n)).scalars()]


def priority_due(conn: sa.Connection, cfg: Config, codes: list[str], day: date) -> bool:
    """Whether `call_next` for these services takes a priority ticket now (`priority_turn`)."""
    waiting_priority = conn.execute(
        sa.select(queue_tickets.c.id).where(queue_tickets.c.day == day, queue_tickets.c.state == TicketState.WAITING,
                                            queue_tickets.c.service_code.in_(codes),
                                            queue_tickets.c.priority.is_(True)).limit(1)).first()
    if waiting_priority is None:
        return False
    every = cfg.queue.priority_every
    return priority_turn(_recent_calls(conn, codes, day, every), every)


def calling_order(waiting: Sequence[tuple[int, bool]], recent: Sequence[bool], every: int) -> list[int]:
    """Ticket ids in the order `call_next` will call them if nobody else arrives: `waiting` is (id,
    priority) longest-waiting first, `recent` the last calls' priority flags, newest first."""
    queue, history, order = list(waiting), list(recent), []
    while queue:
        first_priority = next((i for i, (_id, prio) in enumerate(queue) if prio), None)
        i = first_priority if first_priority is not None and priority_turn(history, every) else 0
        ticket_id, prio = queue.pop(i)
        order.append(ticket_id)
        history.insert(0, prio)
    return order


def people_ahead(conn: sa.Connection, cfg: Config, service_code: str, ticket_id: int, day: date) -> int:
    """How many waiting tickets of the service `call_next` calls before this one, by `calling_order`
    (a priority ticket passes regular ones; a regular one waits for everyone who came before it)."""
    waiting = conn.execute(
        sa.select(queue_tickets.c.id, queue_tickets.c.priority)
        .where(queue_tickets.c.day == day, queue_tickets.c.state == TicketState.WAITING,
               queue_tickets.c.service_code == service_code)
        .order_by(queue_tickets.c.queued_at, queue_tickets.c.id)).all()
    every = cfg.queue.priority_every
    order = calling_order([(r.id, bool(r.priority)) for r in waiting],
                          _recent_calls(conn, [service_code], day, every), every)
    return order.index(ticket_id) if ticket_id in order else 0


def recall(conn: sa.Connection, cfg: Config, counter: str, *, now: datetime | None = None) -> CalledTicket:
    """Announce the counter's current ticket again."""
    services_at_counter(cfg, counter)
    row = current_ticket(conn, counter)
    if row is None:
        raise QueueError("no_current")
    now = now or utcnow()
    conn.execute(sa.update(queue_tickets).where(queue_tickets.c.id == row["id"])
                 .values(call_count=queue_tickets.c.call_count + 1))
    _record_call(conn, row, counter, now, recall=True)
    return CalledTicket(row["id"], row["label"], row["service_code"], counter, row["call_count"] + 1,
                        row["transferred_from"])


def skip(conn: sa.Connection, cfg: Config, counter: str, *, now: datetime | None = None) -> CalledTicket:
    """The called citizen did not come: close the ticket as skipped (it does not count as served)."""
    services_at_counter(cfg, counter)
    row = current_ticket(conn, counter)
    if row is None:
        raise QueueError("no_current")
    conn.execute(sa.update(queue_tickets).where(queue_tickets.c.id == row["id"])
                 .values(state=TicketState.SKIPPED, finished_at=now or utcnow()))
    return CalledTicket(row["id"], row["label"], row["service_code"], counter, row["call_count"],
                        row["transferred_from"])


def transfer(conn: sa.Connection, cfg: Config, counter: str, to_service: str) -> CalledTicket:
    """Send the current citizen to another service's queue, keeping the number on their ticket.

    The ticket keeps its original queue time, so it goes ahead of people who came later.
    """
    services_at_counter(cfg, counter)
    target = get_service(cfg, to_service)
    row = current_ticket(conn, counter)
    if row is None:
        raise QueueError("no_current")
    if row["service_code"] == target.code:
        raise QueueError("same_service")
    conn.execute(sa.update(queue_tickets).where(queue_tickets.c.id == row["id"]).values(
        state=TicketState.WAITING, service_code=target.code, counter=None, called_at=None,
        transferred_from=row["service_code"]))
    return CalledTicket(row["id"], row["label"], target.code, counter, row["call_count"], row["service_code"])


def finish(conn: sa.Connection, cfg: Config, counter: str, *, now: datetime | None = None) -> CalledTicket:
    """Mark the current citizen as served without calling the next one (e.g. at closing time)."""
    services_at_counter(cfg, counter)
    row = current_ticket(conn, counter)
    if row is None:
        raise QueueError("no_current")
    conn.execute(sa.update(queue_tickets).where(queue_tickets.c.id == row["id"])
                 .values(state=TicketState.DONE, finished_at=now or utcnow()))
    return CalledTicket(row["id"], row["label"], row["service_code"], counter, row["call_count"],
                        row["transferred_from"])


# --- what the pages show -----------------------------------------------------------------------

def service_summary(conn: sa.Connection, cfg: Config, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Per service: waiting count, served today, and the estimate for someone taking a number now."""
    day = local_day(cfg, now)
    counts: dict[tuple[str, str], int] = {
        (code, state): n for code, state, n in conn.execute(
            sa.select(queue_tickets.c.service_code, queue_tickets.c.state, sa.func.count())
            .where(queue_tickets.c.day == day)
            .group_by(queue_tickets.c.service_code, queue_tickets.c.state))
    }
    out = []
    for svc in list_services(cfg):
        waiting = counts.get((svc.code, TicketState.WAITING), 0)
        out.append({
            "code": svc.code, "name_vi": svc.name_vi, "name_en": svc.name_en, "prefix": svc.prefix,
            "counters": list(svc.counters), "waiting": waiting,
            "served": counts.get((svc.code, TicketState.DONE), 0),
            "skipped": counts.get((svc.code, TicketState.SKIPPED), 0),
            "estimated_wait_min": estimate_wait_min(conn, cfg, svc.code, waiting),
        })
    return out


def counter_view(conn: sa.Connection, cfg: Config, counter: str, *, now: datetime | None = None) -> dict[str, Any]:
    services = services_at_counter(cfg, counter)
    codes = {s.code for s in services}
    row = current_ticket(conn, counter)
    last = conn.execute(
        sa.select(queue_calls.c.label, queue_calls.c.service_code)
        .where(queue_calls.c.counter == counter, queue_calls.c.called_at >= day_start_utc(cfg, local_day(cfg, now)))
        .order_by(queue_calls.c.id.desc()).limit(1)).mappings().first()
    return {
        "counter": counter,
        "services": [s for s in service_summary(conn, cfg, now=now) if s["code"] in codes],
        "all_services": list_services(cfg),
        "current": dict(row) if row else None,
        "last_call": dict(last) if last else None,  # the citizen a rating at this counter is about
    }


def display_state(conn: sa.Connection, cfg: Config, service_codes: list[str] | None = None,
                  after: int | None = None, *, now: datetime | None = None) -> dict[str, Any]:
    """What the hall display shows: recent calls per service and the calls to announce.

    `after` is the last call id the display has announced; None means "just opened": nothing old
    is announced.
    """
    now = now or utcnow()
    services = [get_service(cfg, c) for c in service_codes] if service_codes else list_services(cfg)
    codes = [s.code for s in services]
    since = day_start_utc(cfg, local_day(cfg, now))
    recent = conn.execute(
        sa.select(queue_calls).where(queue_calls.c.called_at >= since, queue_calls.c.service_code.in_(codes))
        .order_by(queue_calls.c.id.desc()).limit(200)
    ).mappings().all()
    summary = {s["code"]: s for s in service_summary(conn, cfg, now=now)}
    priority_ids = set(conn.execute(sa.select(queue_tickets.c.id).where(
        queue_tickets.c.id.in_({c["ticket_id"] for c in recent}), queue_tickets.c.priority.is_(True))).scalars())
    columns = []
    for svc in services:
        seen: set[str] = set()
        calls = []
        for call in recent:
            if call["service_code"] != svc.code or call["label"] in seen:
                continue
            seen.add(call["label"])
            calls.append({"id": call["id"], "label": call["label"], "counter": call["counter"],
                          "priority": call["ticket_id"] in priority_ids})
            if len(calls) >= cfg.queue.display_calls:
                break
        columns.append({"code": svc.code, "name_vi": svc.name_vi, "name_en": svc.name_en, "calls": calls,
                        "waiting": summary[svc.code]["waiting"]})
    last_id = recent[0]["id"] if recent else int(after or 0)
    if after is None:
        announce: list[dict[str, Any]] = []
    else:
        announce = [{"id": c["id"], "label": c["label"], "counter": c["counter"], "service_code": c["service_code"],
                     "recall": bool(c["recall"])}
                    for c in reversed(recent) if c["id"] > after][-5:]
        last_id = max([last_id, after] + [a["id"] for a in announce])
    return {"columns": columns, "announce": announce, "last_id": last_id}
