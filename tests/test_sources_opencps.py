"""The OpenCPS v2 connector against an emulator of its real API: only 200 is found, hostile or
drifting answers write nothing, and faults become one clear error kind."""
from __future__ import annotations

import logging
from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa

from kiosk.sources.api import ErrorKind, SourceError, lookup, make_source
from kiosk.sources.store import apply_one
from kiosk.store.schema import dossier_history, dossiers
from tests.emulators.opencps import OpenCpsEmulator

CODE = "000.00.21.H42-251125-0001"


@pytest.fixture
def emu():
    with OpenCpsEmulator() as e:
        yield e


def opencps_config(make_config, emu, **extra):
    source = {"kind": "opencps", "base_url": f"{emu.url}/o/rest/v2", "read_timeout_s": 2.0,
              "connect_timeout_s": 1.0, "lookup_deadline_s": 1.0,
              "opencps": {"group_id": str(emu.group_id), "username": emu.username, "password": emu.password}}
    for k, v in extra.items():
        source[k] = {**source.get(k, {}), **v} if isinstance(v, dict) else v
    return make_config(source=source)


@pytest.fixture
def source(make_config, emu):
    src = make_source(opencps_config(make_config, emu))
    yield src
    src.close()


def test_fetch_with_the_right_secret_gives_the_dossier_in_kiosk_fields(source, emu):
    emu.add(CODE, "releasing", secret="AB12CD")
    found = source.fetch(CODE, "ab12cd")  # OpenCPS compares secrets ignoring case
    rec = found.record
    assert rec["code"] == CODE and rec["status"] == "releasing" and rec["secret"] == "ab12cd"
    assert rec["appointment_date"] == "2026-12-09"
    assert datetime.fromisoformat(rec["received_at"]).astimezone(timezone.utc) == \
        datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc)  # 08:00 in Hanoi
    assert rec["applicant_name"] == "Nguyễn Văn Hùng"
    assert emu.requests[-1] == ("GET", f"/o/rest/v2/dossiers/{CODE}")


def test_wrong_secret_answers_203_which_is_not_found(source, emu):
    emu.add(CODE, secret="AB12CD")
    assert source.fetch(CODE, "ZZZZ99") is None


def test_without_the_group_header_nothing_is_found(make_config, emu):
    emu.add(CODE, secret="AB12CD")
    src = make_source(opencps_config(make_config, emu, opencps={"group_id": ""}))
    assert src.fetch(CODE, "AB12CD") is None
    src.close()


def test_refused_service_account_is_an_auth_error(make_config, emu):
    emu.add(CODE)
    src = make_source(opencps_config(make_config, emu, opencps={"password": "wrong"}))
    with pytest.raises(SourceError) as err:
        src.fetch(CODE, "AB12CD")
    assert err.value.kind == ErrorKind.AUTH and "wrong" not in str(err.value)
    src.close()


def test_an_all_digit_code_is_never_sent_since_opencps_would_read_it_as_a_dossier_id(source, emu):
    d = emu.add(CODE)
    assert source.fetch(str(d.dossierId), None) is None
    assert emu.count("/dossiers/") == 0


def test_older_servers_numbers_for_text_still_parse(make_config):
    with OpenCpsEmulator(quirky=True) as emu:
        emu.add(CODE, "processing", serviceCode="1.001234")
        src = make_source(opencps_config(make_config, emu))
        assert src.fetch(CODE, "AB12CD").record["status"] == "processing"
        src.close()


@pytest.mark.parametrize("fault, kind", [
    ("500", ErrorKind.REFUSED), ("drop", ErrorKind.UNREACHABLE), ("malformed", ErrorKind.BAD_ANSWER),
    ("html", ErrorKind.REFUSED), ("renamed", ErrorKind.BAD_ANSWER), ("huge", ErrorKind.TOO_BIG),
    ("wrong_code", ErrorKind.BAD_ANSWER),
])
def test_faults_become_one_error_kind_and_write_nothing(make_config, emu, engine, fault, kind, caplog):
    cfg = opencps_config(make_config, emu)
    src = make_source(cfg)
    emu.add(CODE, "releasing")
    emu.fault = fault
    with pytest.raises(SourceError) as err:
        src.fetch(CODE, "AB12CD")
    assert err.value.kind == kind
    assert emu.password not in str(err.value)
    caplog.set_level(logging.WARNING)
    result = lookup(cfg, engine, src, CODE, "AB12CD")
    assert result.row is None and result.source_failed
    assert any(CODE in r.getMessage() and str(kind) in r.getMessage() for r in caplog.records)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(dossiers)).scalar() == 0
    src.close()


def test_slow_answer_past_the_read_timeout_is_a_timeout(make_config, emu):
    src = make_source(opencps_config(make_config, emu, read_timeout_s=0.3))
    emu.add(CODE)
    emu.fault, emu.delay_s = "slow", 2.0
    with pytest.raises(SourceError) as err:
        src.fetch(CODE, "AB12CD")
    assert err.value.kind == ErrorKind.TIMEOUT
    src.close()


def test_fetched_dossier_goes_through_ingest_with_history(make_config, emu, engine):
    cfg = opencps_config(make_config, emu)
    src = make_source(cfg)
    emu.add(CODE, "processing")
    assert apply_one(engine, cfg, src, src.fetch(CODE, "AB12CD")) == "created"
    emu.set_status(CODE, "releasing")
    assert apply_one(engine, cfg, src, src.fetch(CODE, "AB12CD")) == "updated"
    assert apply_one(engine, cfg, src, src.fetch(CODE, "AB12CD")) == "unchanged"
    with engine.connect() as conn:
        row = conn.execute(sa.select(dossiers)).mappings().one()
        hist = conn.execute(sa.select(dossier_history.c.to_status, dossier_history.c.via)).all()
    assert row["status"] == "result_ready" and row["appointment_date"] == date(2026, 12, 9)
    assert [tuple(h) for h in hist] == [("processing", "source"), ("result_ready", "source")]
    src.close()


def test_unknown_status_code_is_refused_with_a_log_line(make_config, emu, engine, caplog):
    cfg = opencps_config(make_config, emu)
    src = make_source(cfg)
    emu.add(CODE, "teleported")
    caplog.set_level(logging.WARNING)
    assert apply_one(engine, cfg, src, src.fetch(CODE, "AB12CD")) is None
    assert any("unknown status" in r.getMessage() for r in caplog.records)
    src.close()


def test_no_log_line_carries_the_secret_or_the_service_password(make_config, emu, engine, caplog):
    cfg = opencps_config(make_config, emu)
    src = make_source(cfg)
    emu.add(CODE, "releasing", secret="QX81ZT")
    caplog.set_level(logging.DEBUG)
    lookup(cfg, engine, src, CODE, "QX81ZT")
    emu.fault = "500"
    lookup(cfg, engine, src, "000.00.21.H42-251125-0002", "QX81ZT")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "500" in text
    for secret in ("QX81ZT", emu.password):
        assert secret not in text
    src.close()


@pytest.fixture
def self_signed(tmp_path):
    """A certificate for 127.0.0.1 that no public CA signed (openssl, as an IT person would make one)."""
    import subprocess

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def test_tls_is_verified_a_self_signed_server_is_refused_unless_its_ca_is_configured(make_config, self_signed):
    cert, key = self_signed
    emu = OpenCpsEmulator()
    emu.use_tls(str(cert), str(key))
    with emu:
        emu.add(CODE)
        src = make_source(opencps_config(make_config, emu))
        with pytest.raises(SourceError) as err:
            src.fetch(CODE, "AB12CD")
        assert err.value.kind == ErrorKind.UNREACHABLE and "CERTIFICATE_VERIFY_FAILED" in err.value.message
        src.close()
        trusted = make_source(opencps_config(make_config, emu, ca_file=str(cert)))
        assert trusted.fetch(CODE, "AB12CD").record["code"] == CODE
        trusted.close()
