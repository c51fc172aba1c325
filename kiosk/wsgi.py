"""Gunicorn entry points.

`gunicorn 'kiosk.wsgi:app()'` works for IT staff who prefer plain gunicorn; `kiosk serve` runs
the same with settings from the config. The gthread worker class is used so that long-lived
event streams (scan events, hall display) do not block other requests.

Memory on a Pi: one worker with many threads serves a kiosk (its screen, a hall display, staff
pages). The master imports the app's modules before it forks, and freezes them out of the garbage
collector, so the worker shares those pages with the master instead of holding its own copy; the
app itself (engine, sessions, rate-limit store) is still made in the worker, after the fork.
"""
from __future__ import annotations

import gc
import importlib

from gunicorn.app.base import BaseApplication

from motcua.config import Config


def app():
    from kiosk import heartbeat
    from kiosk.app import create_app

    application = create_app()
    heartbeat.start(application)
    return application


class _Gunicorn(BaseApplication):
    def __init__(self, cfg: Config, options: dict):
        self.cfg_motcua = cfg
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # settings newer than the installed gunicorn are skipped
                self.cfg.set(key, value)

    def load(self):  # runs in each worker after fork: one engine (and heartbeat thread) per process
        from kiosk import heartbeat
        from kiosk.app import create_app

        application = create_app(self.cfg_motcua)
        heartbeat.start(application)
        return application


def preload_modules() -> None:
    """Import the web app's code in the master (no app, engine or connection made) and freeze it."""
    importlib.import_module("kiosk.app")
    # Objects that exist now are never collected: the collector would otherwise write to (and so
    # copy) every page of them in the worker the first time it runs.
    gc.collect()
    gc.freeze()


def run_gunicorn(cfg: Config, bind: str | None = None, workers: int | None = None) -> None:
    preload_modules()
    options = {
        "bind": bind or cfg.kiosk.bind,
        "workers": workers or cfg.kiosk.workers,
        "worker_class": "gthread",
        "threads": cfg.kiosk.threads,
        "timeout": 60,
        "graceful_timeout": 10,
        "accesslog": "-",
        "forwarded_allow_ips": "127.0.0.1",
        # gunicorn >= 25 opens a control socket at one fixed path per user (~/.gunicorn): several
        # instances (tests, a second kiosk) would fight over it, and nothing here uses it.
        "control_socket_disable": True,
    }
    _Gunicorn(cfg, options).run()
