"""`sms-gateway` command line: run the daemon, queue a message by hand, show health and counts."""
from __future__ import annotations

import uuid

import click

from motcua.cli import AppContext, command_group

cli = command_group("SMS gateway: sends the outbox's notices through a USB modem (python-gammu).")


@cli.command()
@click.option("--until-idle", is_flag=True, help="Exit once nothing is due (for scripts and tests).")
@click.pass_obj
def run(obj: AppContext, until_idle: bool) -> None:
    """Drain the outbox through the modem (a systemd Type=notify service)."""
    from motcua.devicelock import DeviceBusy
    from sms_gateway.api import run_gateway

    try:
        raise SystemExit(run_gateway(obj.config, obj.engine, until_idle=until_idle))
    except DeviceBusy as exc:
        raise click.ClickException(f"the modem is taken: {exc}") from None


@cli.command()
@click.option("--to", "to", required=True, help="Vietnamese mobile number (09..., +84..., old 11-digit forms).")
@click.option("--text", required=True, help="Message text (Vietnamese; the [sms] encoding policy applies).")
@click.pass_obj
def send(obj: AppContext, to: str, text: str) -> None:
    """Queue one message; the running gateway sends it."""
    from motcua.phones import InvalidPhone, normalise_vn_mobile
    from sms_gateway.outbox import enqueue
    from sms_gateway.text import render_notice

    try:
        normalise_vn_mobile(to)
    except InvalidPhone as exc:
        raise click.ClickException(f"invalid number: {exc}") from None
    if not text.strip():
        raise click.ClickException("empty text")
    rendered = render_notice(obj.config, "text", {"text": text})
    with obj.engine.begin() as conn:
        notice_id = enqueue(conn, key=f"manual:{uuid.uuid4()}", phone=to, kind="text", params={"text": text})
    click.echo(f"queued notice {notice_id}: {rendered.parts} part(s), {rendered.encoding}")


@cli.command()
@click.pass_obj
def status(obj: AppContext) -> None:
    """Print every gateway's modem health and the outbox counts by state."""
    from motcua.db import reading
    from sms_gateway.health import format_age, list_modem_health
    from sms_gateway.outbox import counts_by_state

    with reading(obj.engine) as conn:
        gateways = list_modem_health(conn)
        counts = counts_by_state(conn)
    if not gateways:
        click.echo("modem: no report yet (has the gateway run?)")
    for health in gateways:
        signal = f"{health['signal_percent']}%" if health["signal_percent"] is not None else "?"
        click.echo(
            f"modem {health['gateway']}: {health['state']} ({health['label_vi']})"
            f"{' [gateway not running]' if health['stale'] else ''}; network {health['network'] or '?'}, "
            f"signal {signal}, last seen {format_age(health['last_seen_at'])}"
        )
        if health["capped"]:
            click.echo(f"  daily cap of {health['daily_cap']} part(s) reached; sending resumes at "
                       f"{health['capped_until'].isoformat()}")
        if health["detail"]:
            click.echo(f"  detail: {health['detail']}")
        if health["balance_text"] is not None:
            low = " LOW" if health["balance_low"] else ""
            click.echo(f"  balance{low}: {health['balance_text']} ({format_age(health['balance_checked_at'])})")
    click.echo("outbox: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def main() -> None:
    cli(prog_name="sms-gateway")


if __name__ == "__main__":
    main()
