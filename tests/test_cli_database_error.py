"""The CLI's database error names the database but never prints its password."""
from __future__ import annotations

import socket

import click
import pytest

from motcua.cli import AppContext, masked_url


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_database_that_cannot_be_opened_is_named_without_its_password(tmp_path):
    url = f"postgresql+psycopg://motcua:s3cret-pw@127.0.0.1:{_closed_port()}/motcua"
    path = tmp_path / "config.toml"
    path.write_text(f'[paths]\ndata_dir = "{tmp_path}"\n[database]\nurl = "{url}"\n', encoding="utf-8")
    with pytest.raises(click.ClickException) as caught:
        _ = AppContext(str(path)).engine
    message = caught.value.format_message()
    assert message.startswith("cannot open the database postgresql+psycopg://motcua:***@127.0.0.1:")
    assert "s3cret-pw" not in message


def test_a_url_that_does_not_parse_is_not_echoed():
    assert "s3cret" not in masked_url("postgresql://motcua:s3cret@[bad")
    assert masked_url("sqlite:////var/lib/motcua/motcua.db") == "sqlite:////var/lib/motcua/motcua.db"
