"""`kiosk print ticket|slip|status|show` and `kiosk print-worker`."""
from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path

import click

from kiosk.printing.states import JobState
from motcua.cli import AppContext

log = logging.getLogger(__name__)


def _deliver(obj: AppContext, job_id: int, wait_s: float) -> None:
    """Print the job: ourselves when no worker runs (we then own the printer briefly), else wait
    for the worker to print it."""
    # lazy: only the print commands that need it load the printer stack (Pillow, python-escpos)
    from kiosk.printing import jobs
    from kiosk.printing.worker import PrintWorker, printer_lock
    from motcua.devicelock import DeviceBusy

    cfg, engine = obj.config, obj.engine
    lock = printer_lock(cfg)
    try:
        lock.acquire()
    except DeviceBusy:
        click.echo(f"Job {job_id} queued; the print worker is printing it...")
    else:
        try:
            worker = PrintWorker(cfg, engine)
            worker.drain()
            worker.connection.close()
        finally:
            lock.release()
    deadline = time.monotonic() + wait_s
    while True:
        with engine.connect() as conn:
            job = jobs.get_job(conn, job_id)
            state = jobs.printer_state(conn, cfg.station.id)
        if job and job["state"] not in (JobState.PENDING, JobState.PRINTING):
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(0.3)
    if job and job["state"] == JobState.DONE:
        where = f" ({cfg.printer.target or cfg.paths.data_dir / 'printer.out'})" if cfg.printer.kind == "file" else ""
        click.echo(f"Printed job {job_id} on the {cfg.printer.kind} printer{where}.")
        return
    raise click.ClickException(
        f"job {job_id} is {job['state'] if job else 'missing'}; printer {state['state']}: {state['detail']} "
        "(it prints when the printer is back, see `kiosk print status`)")


_wait_option = click.option("--wait", "wait_s", type=float, default=30, show_default=True,
                            help="Seconds to wait for the print worker.")


@click.group("print")
def print_group() -> None:
    """Print queue tickets and dossier status slips (through the configured printer)."""


@print_group.command("ticket")
@click.option("--service", "service", required=True, help="Service code or ticket prefix, e.g. HT or A.")
@_wait_option
@click.pass_obj
def print_ticket(obj: AppContext, service: str, wait_s: float) -> None:
    """Take the next queue number of a service and print its ticket."""
    # lazy: only the print commands that need it load the printer stack (Pillow, python-escpos)
    from kiosk.printing.jobs import submit_ticket
    from kiosk.queue.core import list_services, take_ticket

    with obj.engine.begin() as conn:
        try:
            ticket = take_ticket(conn, obj.config, service)
        except LookupError:
            codes = ", ".join(f"{s.code} ({s.prefix}: {s.name_vi})" for s in list_services(obj.config))
            raise click.BadParameter(f"unknown service {service!r}; configured: {codes}",
                                     param_hint="--service") from None
        job_id = submit_ticket(conn, obj.config, ticket, source="cli")
    click.echo(f"Ticket {ticket.label} ({ticket.service_name_vi}), {ticket.waiting_ahead} waiting ahead.")
    _deliver(obj, job_id, wait_s)


@print_group.command("slip")
@click.argument("dossier_code")
@_wait_option
@click.pass_obj
def print_slip(obj: AppContext, dossier_code: str, wait_s: float) -> None:
    """Print the status slip of a dossier."""
    # lazy: only the print commands that need it load the printer stack (Pillow, python-escpos)
    from kiosk.printing.jobs import submit_slip

    with obj.engine.begin() as conn:
        try:
            job_id = submit_slip(conn, obj.config, dossier_code.strip(), source="cli")
        except LookupError:
            raise click.ClickException(f"no dossier with code {dossier_code!r}") from None
    _deliver(obj, job_id, wait_s)


@print_group.command("reprint")
@click.argument("job_id", type=int)
@_wait_option
@click.pass_obj
def print_reprint(obj: AppContext, job_id: int, wait_s: float) -> None:
    """Print a job again (a lost ticket, or a job left "uncertain" by a worker crash): `print status` lists them."""
    # lazy: only the print commands that need it load the printer stack (Pillow, python-escpos)
    from kiosk.printing.jobs import get_job, reprint

    with obj.engine.begin() as conn:
        try:
            new_id = reprint(conn, job_id, source="cli")
        except LookupError:
            raise click.ClickException(f"no print job {job_id}") from None
        old = get_job(conn, job_id)
    click.echo(f"Reprinting job {job_id} ({old['kind']} {old['ref']}) as job {new_id}.")
    _deliver(obj, new_id, wait_s)


@print_group.command("status")
@click.pass_obj
def print_status(obj: AppContext) -> None:
    """The printer's state as the print worker last saw it, and recent jobs."""
    # lazy: only the print commands that need it load the printer stack (Pillow, python-escpos)
    from kiosk.printing import jobs

    with obj.engine.connect() as conn:
        state = jobs.printer_state(conn, obj.config.station.id)
        recent = jobs.recent_jobs(conn, 10)
    click.echo(f"printer: {state['state']}{' (paper low)' if state['paper_low'] else ''} {state['detail']}".rstrip())
    click.echo(f"station {state['station']}: worker alive: {state['worker_alive']}; "
               f"pending jobs: {state['pending_jobs']}")
    for j in recent:
        click.echo(f"  #{j['id']:<5} {j['station']:<10} {j['kind']:<6} {j['ref'] or '':<28} {j['state']:<9} "
                   f"{j['last_error'] or ''}")


@print_group.command("show")
@click.argument("raw", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True)
@click.pass_obj
def print_show(obj: AppContext, raw: Path, out: Path) -> None:
    """Turn raw ESC/POS bytes (a file printer's output) into PNG images, one per cut."""
    # lazy: only the print commands that need it load the printer stack (Pillow, python-escpos)
    from kiosk.printing.decode import DecodeError, pages

    try:
        found = pages(raw.read_bytes(), obj.config.printer.paper_dots)
    except DecodeError as exc:
        raise click.ClickException(f"{raw}: {exc}") from None
    out.mkdir(parents=True, exist_ok=True)
    for i, page in enumerate(found, 1):
        path = out / f"{raw.stem}-{i:03d}.png"
        page.image.save(path)
        click.echo(f"{path}  {page.image.width}x{page.image.height}{'  cut' if page.cut else ''}")


@click.command("print-worker")
@click.pass_obj
def print_worker(obj: AppContext) -> None:
    """Run the print worker: the one process that owns the printer."""
    import sdnotify  # lazy: only the long-running worker talks to systemd

    from kiosk.printing.worker import PrintWorker, printer_lock
    from motcua.devicelock import DeviceBusy

    cfg, engine = obj.config, obj.engine
    lock = printer_lock(cfg)
    try:
        lock.acquire()
    except DeviceBusy as exc:
        raise click.ClickException(f"another print worker is running ({exc})") from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    notifier = sdnotify.SystemdNotifier()
    worker = PrintWorker(cfg, engine, notify=notifier.notify)
    log.info("print worker started: %s, %d dots", worker.connection.describe(), cfg.printer.paper_dots)
    try:
        worker.run(stop)
    finally:
        lock.release()
    log.info("print worker stopped (%d printed)", worker.printed)
