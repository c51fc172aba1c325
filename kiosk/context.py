"""Request helpers every blueprint uses: the app's configuration, database engine and source.

They live apart from the app factory (kiosk/app.py) so that blueprints import them and the factory
imports the blueprints, with no cycle between the two.
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import current_app

from kiosk.sources.api import Source
from motcua.config import Config

ENGINE_KEY = "motcua.engine"
CONFIG_KEY = "MOTCUA"
SOURCE_KEY = "motcua.source"


def get_engine() -> sa.Engine:
    """The database engine of the current app (one per process, shared by its threads)."""
    return current_app.extensions[ENGINE_KEY]


def get_config() -> Config:
    """The loaded configuration of the current app."""
    return current_app.config[CONFIG_KEY]


def get_source() -> Source | None:
    """The provincial system this app follows ([source]), or None when none is configured."""
    return current_app.extensions.get(SOURCE_KEY)
