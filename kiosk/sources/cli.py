"""`kiosk sync` (the service) and `kiosk source check` (for IT staff)."""
from __future__ import annotations

import json
import logging
import signal
import sys
import threading

import click
import sdnotify

from kiosk.ratings.api import push_due
from kiosk.sources.api import make_source
from kiosk.sources.base import ErrorKind, Source, SourceError
from kiosk.sources.store import sync_health
from kiosk.sources.sync import SyncService
from motcua.cli import AppContext
from motcua.config import Config, exposed_credentials

log = logging.getLogger(__name__)

# One sentence per failure kind: what is wrong and where to look.
ADVICE = {
    ErrorKind.UNREACHABLE: "the provincial system cannot be reached: check the network, base_url and the firewall",
    ErrorKind.TIMEOUT: "the provincial system does not answer in time: check the link or raise read_timeout_s",
    ErrorKind.AUTH: "the provincial system refuses the credentials: check username/password (or dstcode, token)",
    ErrorKind.REFUSED: "the provincial system answers with an error: check base_url and the service's state",
    ErrorKind.BAD_ANSWER: "the provincial system answers in an unexpected shape: check base_url and the API version",
    ErrorKind.TOO_BIG: "the provincial system's answer is larger than max_response_bytes",
    ErrorKind.UNSUPPORTED: "this source kind cannot do that",
}


def check_source(cfg: Config, source: Source | None) -> tuple[bool, str]:
    """(ok, one sentence): reachability, credentials, one sample dossier."""
    if source is None:
        return False, 'No source is configured: set [source] kind (and base_url) in the configuration file.'
    try:
        reached = source.check()
        if not source.supports_fetch:
            return True, f"{source.kind}: {reached}."
        code = source.sample_code()
        if code is None:
            return True, f"{source.kind}: {reached}; no sample dossier listed, so a lookup was not tried."
        if source.fetch(code, None) is None:
            return False, (f"{source.kind}: {reached}, but the sample dossier {code} cannot be read in detail: "
                           "check the service account's rights and the groupId/madonvi.")
        return True, f"{source.kind}: {reached}; sample dossier {code} read and valid."
    except SourceError as exc:
        return False, f"{source.kind}: {ADVICE[exc.kind]} ({exc.message})."


@click.command("sync")
@click.option("--once", is_flag=True, help="One pass, then exit (status 1 when it failed).")
@click.pass_obj
def sync_command(obj: AppContext, once: bool) -> None:
    """Follow the provincial system: poll its changes into the store ([source] section)."""
    cfg, engine = obj.config, obj.engine
    source = make_source(cfg)
    notifier = sdnotify.SystemdNotifier()
    if source is None:
        if once:
            raise click.ClickException('no source configured: set [source] kind in the configuration file')
        # The unit is enabled on every appliance; without a source it waits quietly instead of restarting.
        log.info('sync: no source configured ([source] kind = "none"); idle')
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        notifier.notify("READY=1")
        while not stop.wait(60):
            notifier.notify("WATCHDOG=1")
        return
    # Ratings to the provincial system ride on the sync service: same source, same back-off settings.
    def push_ratings() -> None:
        pushed = push_due(cfg, engine, source)
        if pushed.error and once:
            click.echo(f"ratings: push failed: {pushed.error}", err=True)

    if not source.takes_ratings(cfg):
        log.info("sync: %s takes no satisfaction ratings here; they stay on the kiosk (/staff/ratings)", source.kind)
    service = SyncService(cfg, engine, source, notify=notifier.notify, after_pass=push_ratings)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: service.stop.set())
    try:
        if once:
            try:
                report = service.run_pass()
            except SourceError as exc:
                service.record_error(exc)
                click.echo(f"sync failed: {exc}", err=True)
                sys.exit(1)
            click.echo(f"{source.kind}: {report.listed} listed, {report.refreshed} read again, "
                       f"{report.written} written, {report.refused} refused"
                       + ("" if report.complete else " (pass not complete; the next one resumes)"))
            push_ratings()
            return
        service.run()
    finally:
        source.close()


@click.group("source")
def source_group() -> None:
    """The provincial system this kiosk follows ([source] section)."""


@source_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def check_command(obj: AppContext, as_json: bool) -> None:
    """Reachability, credentials and one sample dossier, in one sentence."""
    cfg = obj.config
    source = make_source(cfg)
    try:
        ok, sentence = check_source(cfg, source)
    finally:
        if source:
            source.close()
    exposed = exposed_credentials(cfg.source)
    if as_json:
        click.echo(json.dumps({"ok": ok, "message": sentence, "warning": exposed}, ensure_ascii=False))
    else:
        click.echo(sentence)
        if exposed:
            click.echo(f"Warning: {exposed}.", err=True)
    if not ok:
        sys.exit(1)


@source_group.command("status")
@click.pass_obj
def status_command(obj: AppContext) -> None:
    """The sync service's health: last success, lag, last error."""
    health = sync_health(obj.config, obj.engine)
    click.echo(f"{health['state']}: {health['detail']}")
