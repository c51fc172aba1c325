"""`kiosk ratings push` and `kiosk ratings status` (for IT staff; the sync service pushes on its own)."""
from __future__ import annotations

import sys

import click

from kiosk.ratings.push import push_due, push_status, release_backoff
from kiosk.sources.api import make_source
from motcua.cli import AppContext


@click.group("ratings")
def ratings_group() -> None:
    """Satisfaction ratings: push them to the provincial system."""


@ratings_group.command("push")
@click.option("--force", is_flag=True, help="Try now, even during the back-off after an error.")
@click.pass_obj
def push_command(obj: AppContext, force: bool) -> None:
    """Push the unsent ratings now (status 1 when the provincial system refused or failed)."""
    cfg, engine = obj.config, obj.engine
    source = make_source(cfg)
    try:
        if force:
            release_backoff(engine)
        report = push_due(cfg, engine, source, limit=1000)
    finally:
        if source is not None:
            source.close()
    if report.local:
        click.echo(f"ratings stay on the kiosk: the source ({cfg.source_.kind}) takes no ratings "
                   "(OpenCPS: set [source.opencps] voting_id)")
        return
    if report.held_until and not report.error:
        click.echo(f"held back after an error until {report.held_until.isoformat(timespec='seconds')} "
                   "(--force tries now)")
        return
    click.echo(f"{report.pushed} pushed, {report.found} found already there, {report.replaced} replaced on the system"
               + (f"; stopped: {report.error}" if report.error else ""))
    if report.error:
        sys.exit(1)


@ratings_group.command("status")
@click.pass_obj
def status_command(obj: AppContext) -> None:
    """How many ratings are unsent, pushed or replaced, and the last error."""
    st = push_status(obj.config, obj.engine)
    c = st["counts"]
    where = "kept on the kiosk (no voting API configured)" if st["local"] else f"to {st['kind']}"
    click.echo(f"{where}: {st['unsent']} unsent, {c['pushed']} pushed, {c['replaced']} replaced"
               + (f"; last error: {st['error']}" if st["error"] else ""))
