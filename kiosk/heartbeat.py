"""The web app's row in the hall's station list (motcua/stations.py), written from each gunicorn worker.

A thread, not a request hook: the kiosk screen holds one long event stream and may make no other
request for hours, yet the web app is alive. Started by kiosk/wsgi.py after the fork (a thread started
before it would not exist in the workers); `create_app` alone (tests, flask shell) starts none.
"""
from __future__ import annotations

import logging
import threading

from flask import Flask

from kiosk.context import CONFIG_KEY, ENGINE_KEY
from motcua import stations
from motcua.timeutil import utcnow

log = logging.getLogger(__name__)


def start(app: Flask) -> threading.Thread:
    """Write the web app's heartbeat now and every `[station] heartbeat_s` until the process exits."""
    cfg, engine = app.config[CONFIG_KEY], app.extensions[ENGINE_KEY]
    started = utcnow()
    wake = threading.Event()

    def loop() -> None:
        while True:
            try:
                stations.heartbeat(engine, cfg.station, stations.Service.WEB, started_at=started)
            except Exception as exc:  # the page goes on; the hall list shows this station going stale
                log.warning("cannot write the station heartbeat: %s", exc)
            wake.wait(cfg.station.heartbeat_s)

    thread = threading.Thread(target=loop, name="station-heartbeat", daemon=True)
    thread.start()
    return thread
