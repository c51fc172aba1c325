"""`kiosk` command line: serve the web app, import exports, seed the demo, and more.

Subcommands live next to what they drive (kiosk/importer.py, kiosk/demo.py, ...) and are added to
the group here.
"""
from __future__ import annotations

import click

from motcua.cli import AppContext, command_group

cli = command_group("Commune hall kiosk (Bộ phận Một cửa): dossier status, queue tickets, printing.")


@cli.command()
@click.option("--bind", default=None, help="host:port (default: [kiosk] bind)")
@click.option("--workers", type=int, default=None, help="gunicorn workers (default: [kiosk] workers)")
@click.pass_obj
def serve(obj: AppContext, bind: str | None, workers: int | None) -> None:
    """Run the web app under gunicorn."""
    from kiosk.wsgi import run_gunicorn

    # Opening the engine migrates the schema: do it once here, before the gunicorn workers start.
    _ = obj.engine
    run_gunicorn(obj.config, bind=bind, workers=workers)


def _register() -> None:
    from kiosk.demo import demo
    from kiosk.importer import import_command

    cli.add_command(import_command)
    cli.add_command(demo)

    from kiosk.printing.cli import print_group, print_worker

    cli.add_command(print_group)
    cli.add_command(print_worker)

    from kiosk.scanner.cli import scan_command

    cli.add_command(scan_command)

    from kiosk.staff.cli import user_group

    cli.add_command(user_group)

    from kiosk.backup import backup_command
    from kiosk.doctor import doctor_command

    cli.add_command(backup_command)
    cli.add_command(doctor_command)


_register()


def main() -> None:
    cli(prog_name="kiosk")


if __name__ == "__main__":
    main()
