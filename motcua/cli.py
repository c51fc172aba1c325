"""Pieces shared by the `kiosk` and `sms-gateway` command lines."""
from __future__ import annotations

import logging
import sys
from functools import cached_property

import click

from motcua.config import ENV_VAR, Config, ConfigError, load_config


class AppContext:
    """What every subcommand gets: the config (loaded on first use) and the database engine."""

    def __init__(self, config_path: str | None):
        self.config_path = config_path
        self.overrides: dict = {}

    @cached_property
    def config(self) -> Config:
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
            raise click.ClickException(f"cannot open the database {self.config.database.url}: {exc}") from None


def config_option(f):
    return click.option(
        "--config", "config_path", type=click.Path(dir_okay=False), default=None,
        help=f"Configuration file (TOML). Default: ${ENV_VAR}, else /etc/motcua/config.toml, else built-in defaults.",
    )(f)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)


def command_group(help_text: str) -> click.Group:
    """The top-level group of `kiosk` and `sms-gateway`: --config, --verbose, and the AppContext."""

    @click.group(help=help_text, context_settings={"help_option_names": ["-h", "--help"]})
    @config_option
    @click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
    @click.pass_context
    def group(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
        setup_logging(verbose)
        ctx.obj = AppContext(config_path)

    return group
