"""`kiosk scan`: run the camera scanner, or decode images / a video for testing."""
from __future__ import annotations

import json
import sys

import click

from motcua.cli import AppContext


@click.command("scan")
@click.option("--camera", "camera", flag_value="__config__", default=None,
              help="Run the scanner on the camera from [scanner] camera.")
@click.option("--device", default=None, help="With --camera: an OpenCV index or /dev/v4l/by-id/... path instead.")
@click.option("--video", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Run the live pipeline on a video file as if it were the camera.")
@click.option("--loop", is_flag=True, help="With --video: start again at the end (for the demo).")
@click.option("--image", "images", is_flag=True, help="Decode the FILES given and print one JSON line each.")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@click.pass_obj
def scan_command(obj: AppContext, camera: str | None, device: str | None, video: str | None, loop: bool,
                 images: bool, files: tuple[str, ...]) -> None:
    """Camera QR scanner for receipts (owns the camera; the kiosk screen gets its events)."""
    chosen = [name for name, on in (("--camera", camera or device), ("--video", video), ("--image", images)) if on]
    if len(chosen) != 1:
        raise click.UsageError("choose exactly one of --camera, --video FILE, --image FILE [FILE ...]")
    if files and not images:
        raise click.UsageError("file arguments are only for --image")
    cfg = obj.config
    if images:
        if not files:
            raise click.UsageError("--image needs at least one file")
        from kiosk.scanner.images import scan_files

        for line in scan_files(files, cfg.scanner):
            click.echo(json.dumps(line, ensure_ascii=False))
            sys.stdout.flush()
        return

    from kiosk.scanner.service import run_scanner, station_database
    from kiosk.scanner.source import SourceSpec

    sc = cfg.scanner
    if video:
        source = SourceSpec("video", video, sc.width, sc.height, sc.fps, loop=loop)
    else:
        source = SourceSpec("camera", device or sc.camera, sc.width, sc.height, sc.fps)
    from motcua.devicelock import DeviceBusy

    try:
        code = run_scanner(cfg, source, engine=station_database(cfg, lambda: obj.engine))
    except DeviceBusy as exc:
        raise click.ClickException(f"scanner cannot start: {exc}") from None
    except OSError as exc:
        raise click.ClickException(f"scanner cannot start: {exc}") from None
    sys.exit(code)
