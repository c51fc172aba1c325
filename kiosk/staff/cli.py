"""`kiosk user add|list|disable|enable|password|unlock`: staff accounts from the command line."""
from __future__ import annotations

import getpass
import os

import click

from kiosk.staff import audit, users
from motcua.cli import AppContext
from motcua.db import reading


def _cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid{os.getuid()}"


@click.group("user")
def user_group() -> None:
    """Staff accounts for the staff pages (/staff/)."""


@user_group.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(users.ROLES), default=users.OFFICIAL, show_default=True)
@click.option("--name", "display_name", default="", help="Full name shown on the pages.")
@click.option("--password", envvar="MOTCUA_STAFF_PASSWORD", default=None,
              help="Default: prompt (or $MOTCUA_STAFF_PASSWORD). Avoid on a shared shell: it lands in history.")
@click.pass_obj
def add(obj: AppContext, username: str, role: str, display_name: str, password: str | None) -> None:
    """Create an account (official or admin)."""
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with obj.engine.begin() as conn:
        try:
            users.create_user(conn, obj.config.staff, username, password, role=role, display_name=display_name)
        except users.UserError as exc:
            raise click.ClickException(str(exc)) from None
        audit.record(conn, actor=_cli_actor(), action=audit.USER_ADD, target=users.normalise_username(username),
                     detail={"role": role})
    click.echo(f"created {role} {users.normalise_username(username)}")


@user_group.command("list")
@click.pass_obj
def list_(obj: AppContext) -> None:
    """Show every account."""
    with reading(obj.engine) as conn:
        rows = users.list_users(conn)
    if not rows:
        click.echo("no accounts yet: kiosk user add NAME --role admin")
    for r in rows:
        state = "active" if r["active"] else "disabled"
        lock = f" locked until {r['locked_until']:%Y-%m-%d %H:%M} UTC" if r["locked_until"] else ""
        click.echo(f"{r['username']:<24} {r['role']:<9} {state}{lock}  {r['display_name']}")


def _set_active(obj: AppContext, username: str, active: bool) -> None:
    with obj.engine.begin() as conn:
        row = users.get_by_name(conn, username)
        if row is None:
            raise click.ClickException(f"no account {username!r}")
        users.set_active(conn, row["id"], active)
        if active:
            users.unlock(conn, row["id"])
        audit.record(conn, actor=_cli_actor(), action=audit.USER_ENABLE if active else audit.USER_DISABLE,
                     target=row["username"])
    click.echo(f"{'enabled' if active else 'disabled'} {row['username']}")


@user_group.command("disable")
@click.argument("username")
@click.pass_obj
def disable(obj: AppContext, username: str) -> None:
    """Disable an account and end its sessions."""
    _set_active(obj, username, False)


@user_group.command("enable")
@click.argument("username")
@click.pass_obj
def enable(obj: AppContext, username: str) -> None:
    """Enable an account again (and clear a sign-in lockout)."""
    _set_active(obj, username, True)


@user_group.command("password")
@click.argument("username")
@click.option("--password", envvar="MOTCUA_STAFF_PASSWORD", default=None)
@click.pass_obj
def password(obj: AppContext, username: str, password: str | None) -> None:
    """Set a new password (ends the account's sessions)."""
    if password is None:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    with obj.engine.begin() as conn:
        row = users.get_by_name(conn, username)
        if row is None:
            raise click.ClickException(f"no account {username!r}")
        try:
            users.set_password(conn, obj.config.staff, row["id"], password)
        except users.UserError as exc:
            raise click.ClickException(str(exc)) from None
        audit.record(conn, actor=_cli_actor(), action=audit.USER_PASSWORD, target=row["username"])
    click.echo(f"password changed for {row['username']}")


@user_group.command("unlock")
@click.argument("username")
@click.option("--address", default=None, help="Only the lockout from this client address (default: all).")
@click.pass_obj
def unlock(obj: AppContext, username: str, address: str | None) -> None:
    """End an account's sign-in lockout (after too many wrong passwords), from every address or one."""
    with obj.engine.begin() as conn:
        row = users.get_by_name(conn, username)
        if row is None:
            raise click.ClickException(f"no account {username!r}")
        locked = [r["address"] for r in users.locked_addresses(conn, row["username"])]
        ended = users.unlock(conn, row["id"], address)
        audit.record(conn, actor=_cli_actor(), action=audit.USER_UNLOCK, target=row["username"],
                     detail={"address": address or "*", "locked_from": locked, "cleared": ended})
    if locked:
        click.echo(f"unlocked {row['username']} (was locked from {', '.join(locked)})")
    else:
        click.echo(f"{row['username']} was not locked; counters cleared")
