"""Stations of a hall: each service's heartbeat upserts one row; the hall list shows stale boxes, never hides them."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from motcua.config import ConfigError
from motcua.stations import Device, Service, StationRole, forget, get_station, heartbeat, list_stations

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=timezone.utc)


def test_a_config_without_station_section_is_the_single_station_main(config):
    assert config.station.id == "main"
    assert config.station.role == StationRole.KIOSK
    assert config.station.label == "main"


@pytest.mark.parametrize("bad", ["", "Kiosk A", "a/b", "x" * 33, "-a"])
def test_a_station_id_that_cannot_name_a_box_is_refused(make_config, bad):
    with pytest.raises(ConfigError, match="station.id"):
        make_config(station={"id": bad})


def test_heartbeat_inserts_then_updates_one_row_per_service(any_engine, make_config):
    a = make_config(station={"id": "kiosk-a", "name": "Kiosk cửa chính"}).station
    heartbeat(any_engine, a, Service.WEB, started_at=T0, now=T0)
    heartbeat(any_engine, a, Service.PRINT_WORKER, device=Device.PRINTER, device_state="ok", started_at=T0, now=T0)
    heartbeat(any_engine, a, Service.PRINT_WORKER, device=Device.PRINTER, device_state="paper_out",
              now=T0 + timedelta(seconds=30))
    [st] = list_stations(any_engine, stale_after_s=120, now=T0 + timedelta(seconds=40))
    assert (st.id, st.name, st.role) == ("kiosk-a", "Kiosk cửa chính", "kiosk")
    assert [s.service for s in st.services] == ["print-worker", "web"]
    printer = st.device(Device.PRINTER)
    assert printer is not None and printer.device_state == "paper_out"
    assert printer.started_at == T0 and printer.age_s == 10
    assert st.age_s == 10 and not st.stale


def test_a_silent_station_is_listed_as_stale_not_hidden(any_engine, make_config):
    a = make_config(station={"id": "kiosk-a"}).station
    b = make_config(station={"id": "kiosk-b"}).station
    heartbeat(any_engine, a, Service.WEB, now=T0)
    heartbeat(any_engine, b, Service.WEB, now=T0 + timedelta(seconds=290))
    hall = list_stations(any_engine, stale_after_s=120, now=T0 + timedelta(seconds=300))
    assert [(s.id, s.stale, s.age_s) for s in hall] == [("kiosk-a", True, 300), ("kiosk-b", False, 10)]
    assert get_station(any_engine, "kiosk-c", stale_after_s=120) is None
    assert forget(any_engine, "kiosk-a") == 1
    assert [s.id for s in list_stations(any_engine, stale_after_s=120, now=T0)] == ["kiosk-b"]


def test_setup_writes_the_station_section_keeping_the_rest_of_the_file(tmp_path):
    from motcua.config import load_config
    from motcua.stations import write_station_section

    sample = (Path(__file__).resolve().parents[1] / "config.sample.toml").read_text(encoding="utf-8")
    text = write_station_section(sample, station_id="kiosk-a", role="kiosk")
    assert text.count("[station]") == 1 and 'id = "kiosk-a"              # lower-case' in text
    assert text.replace('"kiosk-a"', '"main"') == sample  # only the value changed
    assert write_station_section(text, station_id="kiosk-a", role="kiosk") == text  # a re-run changes nothing
    path = tmp_path / "c.toml"
    path.write_text(write_station_section('[site]\ncommune_name = "Xã Gia Sinh"\n', station_id="gw-1",
                                          role="gateway"), encoding="utf-8")
    cfg = load_config(path)
    assert (cfg.station.id, cfg.station.role, cfg.site.commune_name) == ("gw-1", "gateway", "Xã Gia Sinh")


def test_a_heartbeat_through_the_driver_alone_writes_the_row_an_engine_would(any_engine, make_config):
    """The scanner's supervisor writes through sqlite3/psycopg (no SQLAlchemy); the row must be the same."""
    from motcua.stations import DirectDatabase

    url = any_engine.url.render_as_string(hide_password=False)
    direct = DirectDatabase.from_url(url, 5000)
    assert direct is not None and direct.dialect == any_engine.dialect.name
    a = make_config(station={"id": "kiosk-a", "name": "Kiosk cửa chính"}).station
    t1 = T0 + timedelta(seconds=30, microseconds=250)
    for db, service in ((any_engine, Service.WEB), (direct, Service.SCANNER)):
        heartbeat(db, a, service, device=Device.CAMERA, device_state="ok", started_at=T0, now=T0)
        heartbeat(db, a, service, device=Device.CAMERA, device_state="unavailable", detail="unplugged", now=t1)
    [st] = list_stations(any_engine, stale_after_s=120, now=t1)
    web, scanner = (next(s for s in st.services if s.service == name) for name in (Service.WEB, Service.SCANNER))
    assert (scanner.started_at, scanner.heartbeat_at, scanner.device_state, scanner.detail) == (
        T0, t1, "unavailable", "unplugged")
    assert {k: v for k, v in vars(web).items() if k != "service"} == {
        k: v for k, v in vars(scanner).items() if k != "service"}
    with any_engine.connect() as conn:  # stored alike, so SQL comparisons and ordering hold across writers
        stored = conn.exec_driver_sql("SELECT service, CAST(heartbeat_at AS TEXT), CAST(started_at AS TEXT) "
                                      "FROM stations ORDER BY service").all()
    assert stored[0][1:] == stored[1][1:]


def test_only_a_database_file_or_postgresql_is_written_without_an_engine():
    from motcua.stations import DirectDatabase

    assert DirectDatabase.from_url("sqlite:////var/lib/motcua/motcua.db", 1).dialect == "sqlite"
    assert DirectDatabase.from_url("postgresql+psycopg://u:p%40ss@db.lan/motcua", 1).dialect == "postgresql"
    for other in ("sqlite://", "sqlite:///:memory:", "sqlite:///x.db?mode=ro", "mysql://u@h/db"):
        assert DirectDatabase.from_url(other, 1) is None
