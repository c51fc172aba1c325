"""Pieces shared by the `kiosk` and `sms-gateway` command lines.

Every CLI call and service start pays for what is imported here, so this module imports only click:
the config (pydantic), the database (SQLAlchemy, Alembic) and each subcommand's module are imported
when a command uses them (on a Pi 4 those imports cost seconds).
"""
from __future__ import annotations

import importlib
from functools import cached_property
from typing import TYPE_CHECKING, Any

import click

from motcua.logs import setup_logging

if TYPE_CHECKING:
    from motcua.config import Config


class AppContext:
    """What every subcommand gets: the config (loaded on first use) and the database engine."""

    def __init__(self, config_path: str | None):
        self.config_path = config_path
        self.overrides: dict = {}

    @cached_property
    def config(self) -> Config:
        from motcua.config import ConfigError, load_config

        try:
            return load_config(self.config_path, self.overrides)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None

    @cached_property
    def engine(self):
        from motcua.db import make_engine

        try:
            return make_engine(self.config)
        except Exception as exc:  # a database we cannot open is a setup problem, told plainly
            url = self.config.database.url
            raise click.ClickException(f"cannot open the database {masked_url(url)}: {_scrub(str(exc), url)}") from None


def masked_url(url: str) -> str:
    """The database URL with its password as ***, fit for a terminal or a log."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even a URL: its text may still hold a password, so none of it is shown
        return "(the [database] url, which does not parse)"


def _scrub(text: str, url: str) -> str:
    """A driver's error without the URL or its password, should the driver quote either."""
    from sqlalchemy.engine import make_url

    try:
        password = make_url(url).password
    except Exception:
        password = None
    if url:
        text = text.replace(url, masked_url(url))
    return text.replace(password, "***") if password else text


def config_option(f):
    return click.option(
        "--config", "config_path", type=click.Path(dir_okay=False), default=None,
        help="Configuration file (TOML). Default: $MOTCUA_CONFIG, else /etc/motcua/config.toml, "
             "else built-in defaults.",
    )(f)


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when one of them runs (or shows its --help).

    `lazy` maps a name to ("module:attribute", summary); the summary is what the group's --help lists,
    so listing the commands imports none of them (pip keeps its `commands_dict` the same way). A test
    checks each summary against the command's own first docstring line.
    """

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in self.lazy:
            module, _, attr = self.lazy[name][0].partition(":")
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(map(len, self.list_commands(ctx)), default=0)
        rows = []
        for name in self.list_commands(ctx):
            if name in self.commands:
                if self.commands[name].hidden:
                    continue
                rows.append((name, self.commands[name].get_short_help_str(limit)))
            else:
                rows.append((name, self.lazy[name][1]))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def command_group(help_text: str, lazy: dict[str, tuple[str, str]] | None = None) -> click.Group:
    """The top-level group of `kiosk` and `sms-gateway`: --config, --verbose, and the AppContext."""

    @click.group(cls=LazyGroup, lazy=lazy, help=help_text, context_settings={"help_option_names": ["-h", "--help"]})
    @config_option
    @click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
    @click.pass_context
    def group(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
        setup_logging(verbose)
        ctx.obj = AppContext(config_path)

    return group
