"""`sms-gateway` command line."""
from __future__ import annotations

import click
import sqlalchemy as sa

from motcua.cli import AppContext, config_option, setup_logging
from sms_gateway.schema import notices


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@config_option
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """SMS gateway: sends the outbox's notices through a USB modem (python-gammu)."""
    setup_logging(verbose)
    ctx.obj = AppContext(config_path)


@cli.command()
@click.pass_obj
def status(obj: AppContext) -> None:
    """Print the outbox counts by state."""
    with obj.engine.connect() as conn:
        rows = conn.execute(sa.select(notices.c.state, sa.func.count()).group_by(notices.c.state)).all()
    counts = dict(rows)
    click.echo("outbox: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "empty"))


def main() -> None:
    cli(prog_name="sms-gateway")


if __name__ == "__main__":
    main()
