"""Gunicorn entry points.

`gunicorn 'kiosk.wsgi:app()'` works for IT staff who prefer plain gunicorn; `kiosk serve` runs
the same with settings from the config. The gthread worker class is used so that long-lived
event streams (scan events, hall display) do not block other requests.

Memory on a Pi: one worker with many threads serves a kiosk (its screen, a hall display, staff
pages). The master (gunicorn's arbiter) is a fresh interpreter that imports gunicorn and nothing of
the app: `kiosk serve` checks the config and migrates the database, then execs `python -m kiosk.wsgi`,
and the config, SQLAlchemy and the app are loaded in the worker. Preloading the app in the master was
meant to share its pages with the worker, but Python writes reference counts into every object it
touches, so the worker copied most of them anyway: master and worker each held ~45 MB; the bare
master holds ~12. The worker freezes what it loaded out of the garbage collector (fewer objects to
walk on every collection: less CPU while the kiosk idles).
"""
from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
from typing import TYPE_CHECKING, NoReturn

from gunicorn.app.base import BaseApplication

from kiosk import python_module

if TYPE_CHECKING:
    from motcua.config import Config


def app():
    from kiosk import heartbeat
    from kiosk.app import create_app

    application = create_app()
    heartbeat.start(application)
    return application


class _Gunicorn(BaseApplication):
    def __init__(self, config_path: str | None, options: dict):
        self.config_path = config_path
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # settings newer than the installed gunicorn are skipped
                self.cfg.set(key, value)

    def load(self):  # runs in each worker after fork: one engine (and heartbeat thread) per process
        from kiosk import heartbeat
        from kiosk.app import create_app
        from motcua.config import load_config
        from motcua.logs import setup_logging
        from motcua.memory import release_free_memory

        setup_logging(self.options.get("loglevel") == "debug")
        application = create_app(load_config(self.config_path))
        heartbeat.start(application)
        # Modules, templates and the app live as long as the worker: the collector need not walk them.
        release_free_memory()
        gc.freeze()
        return application


def _end_streams_on_sigterm(worker) -> None:
    """gunicorn's post_worker_init hook: on the worker's SIGTERM (a graceful stop), end the open
    scanner streams first, so the worker stops at once instead of after its graceful timeout."""
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        from kiosk.scanner.web import stop_streams

        stop_streams()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)


def run_gunicorn(cfg: Config, config_path: str | None, bind: str | None = None, workers: int | None = None,
                 verbose: bool = False) -> NoReturn:
    """Replace this process with gunicorn's master (`main` below) serving the app of `config_path`
    ($MOTCUA_CONFIG or the default when None), with `cfg`'s [kiosk] settings."""
    argv, env = python_module("kiosk.wsgi", "--bind", bind or cfg.kiosk.bind,
                              "--workers", str(workers or cfg.kiosk.workers), "--threads", str(cfg.kiosk.threads))
    if config_path:
        argv += ["--config", config_path]
    if verbose:
        argv.append("--verbose")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)


def main(args: list[str] | None = None) -> None:
    """gunicorn's master, as `kiosk serve` starts it (not meant to be run by hand: use `kiosk serve`)."""
    ap = argparse.ArgumentParser(prog="python -m kiosk.wsgi")
    ap.add_argument("--bind", required=True)
    ap.add_argument("--workers", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--config")
    ap.add_argument("--verbose", action="store_true")
    opts = ap.parse_args(args)
    options = {
        "bind": opts.bind,
        "workers": opts.workers,
        "worker_class": "gthread",
        "threads": opts.threads,
        "timeout": 60,
        "graceful_timeout": 10,
        "accesslog": "-",
        "loglevel": "debug" if opts.verbose else "info",
        "forwarded_allow_ips": "127.0.0.1",
        # gunicorn >= 25 opens a control socket at one fixed path per user (~/.gunicorn): several
        # instances (tests, a second kiosk) would fight over it, and nothing here uses it.
        "control_socket_disable": True,
        "post_worker_init": _end_streams_on_sigterm,
    }
    _Gunicorn(opts.config, options).run()


if __name__ == "__main__":
    main()
