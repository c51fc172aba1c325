"""`kiosk` command line: serve the web app, import exports, seed the demo, and more.

Subcommands live next to what they drive (kiosk/importer.py, kiosk/demo.py, ...) and are named in
SUBCOMMANDS here.
"""
from __future__ import annotations

import click

from motcua.cli import AppContext, command_group

# Subcommands live next to what they drive; each is imported only when it runs (motcua.cli.LazyGroup).
SUBCOMMANDS = {
    "backup": ("kiosk.backup:backup_command", "Back up the SQLite database online into data_dir/backups."),
    "demo": ("kiosk.demo:demo", "Seed sample dossiers and run the appliance on simulated hardware."),
    "doctor": ("kiosk.doctor:doctor_command",
               "Check config, database, backups, disk, clock, services, camera, printer and modem."),
    "import": ("kiosk.importer:import_command",
               "Import dossiers from a CSV (UTF-8, with or without BOM) or XLSX export."),
    "print": ("kiosk.printing.cli:print_group",
              "Print queue tickets and dossier status slips (through the configured printer)."),
    "print-worker": ("kiosk.printing.cli:print_worker", "Run the print worker: the one process that owns the printer."),
    "scan": ("kiosk.scanner.cli:scan_command",
             "Camera QR scanner for receipts (owns the camera; the kiosk screen gets its events)."),
    "sms-gateway": ("kiosk.sms_lookup:sms_gateway_command",
                    "Run the SMS gateway with text-in dossier lookups (the motcua-sms service)."),
    "ratings": ("kiosk.ratings.cli:ratings_group", "Satisfaction ratings: push them to the provincial system."),
    "source": ("kiosk.sources.cli:source_group", "The provincial system this kiosk follows ([source] section)."),
    "sync": ("kiosk.sources.cli:sync_command",
             "Follow the provincial system: poll its changes into the store ([source] section)."),
    "user": ("kiosk.staff.cli:user_group", "Staff accounts for the staff pages (/staff/)."),
}
cli = command_group("Commune hall kiosk (Bộ phận Một cửa): dossier status, queue tickets, printing.", SUBCOMMANDS)


@cli.command()
@click.option("--bind", default=None, help="host:port (default: [kiosk] bind)")
@click.option("--workers", type=int, default=None, help="gunicorn workers (default: [kiosk] workers)")
@click.pass_obj
def serve(obj: AppContext, bind: str | None, workers: int | None) -> None:
    """Run the web app under gunicorn."""
    from kiosk.wsgi import run_gunicorn

    # Opening the engine migrates the schema: once, before the gunicorn workers start. Then this
    # process becomes gunicorn's master, a fresh interpreter (run_gunicorn execs it).
    obj.engine.dispose()
    run_gunicorn(obj.config, obj.config_path, bind=bind, workers=workers,
                 verbose=click.get_current_context().find_root().params.get("verbose", False))


def main() -> None:
    cli(prog_name="kiosk")


if __name__ == "__main__":
    main()
