"""The print worker against a network printer emulator (real python-escpos Network connection):
paper-out holds jobs, recovery prints them in order exactly once, a crash never re-sends."""
from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
import zxingcpp

from kiosk.printing import decode, jobs
from kiosk.printing.connections import FileConnection, NetworkConnection, lp_status, make_connection, status_from_bytes
from kiosk.printing.emulator import NetworkPrinterEmulator
from kiosk.printing.schema import print_jobs
from kiosk.printing.worker import PrintWorker, printer_lock
from kiosk.queue.core import take_ticket
from motcua.db import make_engine
from motcua.timeutil import utcnow


@pytest.fixture
def emulator():
    with NetworkPrinterEmulator() as emu:
        yield emu


@pytest.fixture
def net_config(make_config, emulator):
    return make_config(printer={"kind": "network", "target": emulator.address, "timeout_s": 1, "status_every_s": 0.1})


def _tickets(engine, cfg, n: int) -> list[int]:
    ids = []
    with engine.begin() as conn:
        for _ in range(n):
            ids.append(jobs.submit_ticket(conn, cfg, take_ticket(conn, cfg, "HT")))
    return ids


def _wait(cond, timeout=5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_paper_out_holds_jobs_and_recovery_prints_each_exactly_once(net_config, emulator):
    engine = make_engine(net_config)
    worker = PrintWorker(net_config, engine)
    worker.start()
    emulator.paper = "out"
    ids = _tickets(engine, net_config, 3)
    for _ in range(3):
        assert worker.step() is False
    with engine.connect() as conn:
        state = jobs.printer_state(conn)
        states = [jobs.get_job(conn, i)["state"] for i in ids]
    assert state["state"] == "paper_out" and state["pending_jobs"] == 3
    assert "hết giấy" in state["message_vi"] and "out of paper" in state["message_en"]
    assert states == ["pending"] * 3
    assert emulator.status_queries >= 3
    assert emulator.printed == [] and emulator.lost == []  # nothing was sent into the empty printer

    emulator.paper = "ok"
    assert worker.drain() == 3
    assert worker.step() is False  # nothing left: a further turn prints nothing
    _wait(lambda: len(emulator.printed) == 3)
    time.sleep(0.2)
    assert len(emulator.printed) == 3 and emulator.lost == [] and emulator.errors == []
    with engine.connect() as conn:
        rows = conn.execute(sa.select(print_jobs.c.id, print_jobs.c.state, print_jobs.c.attempts)
                            .order_by(print_jobs.c.id)).all()
        state = jobs.printer_state(conn)
    assert [(r.state, r.attempts) for r in rows] == [("done", 1)] * 3
    assert state["state"] == "ok" and state["pending_jobs"] == 0
    # printed in the order taken: each job is one whole cut ticket of the expected size
    for raw in emulator.printed:
        pages = decode.pages(raw)
        assert len(pages) == 1 and pages[0].cut and pages[0].raster_width <= 576
    engine.dispose()


def test_paper_low_still_prints_and_is_reported(net_config, emulator):
    engine = make_engine(net_config)
    worker = PrintWorker(net_config, engine)
    emulator.paper = "low"
    _tickets(engine, net_config, 1)
    assert worker.step() is True
    with engine.connect() as conn:
        state = jobs.printer_state(conn)
    assert state["state"] == "ok" and state["paper_low"] is True
    engine.dispose()


def test_printer_unreachable_is_offline_and_jobs_wait(make_config):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = make_config(printer={"kind": "network", "target": f"127.0.0.1:{port}", "timeout_s": 0.5})
    engine = make_engine(cfg)
    worker = PrintWorker(cfg, engine)
    _tickets(engine, cfg, 1)
    assert worker.step() is False
    with engine.connect() as conn:
        state = jobs.printer_state(conn)
    assert state["state"] == "offline" and "cannot open" in state["detail"]
    assert state["pending_jobs"] == 1
    engine.dispose()


def test_job_left_printing_by_a_dead_worker_is_not_sent_again(net_config, emulator):
    engine = make_engine(net_config)
    ids = _tickets(engine, net_config, 2)
    with engine.begin() as conn:
        claimed = jobs.claim_next(conn)  # a worker took it, then died before recording "done"
    assert claimed["id"] == ids[0]
    worker = PrintWorker(net_config, engine)
    assert worker.start() == [ids[0]]
    assert worker.drain() == 1
    _wait(lambda: len(emulator.printed) == 1)
    with engine.connect() as conn:
        assert jobs.get_job(conn, ids[0])["state"] == "uncertain"
        assert jobs.get_job(conn, ids[1])["state"] == "done"
    with engine.begin() as conn:
        new_id = jobs.reprint(conn, ids[0])
    assert worker.drain() == 1
    _wait(lambda: len(emulator.printed) == 2)
    with engine.connect() as conn:
        assert jobs.get_job(conn, new_id)["state"] == "done"
    engine.dispose()


def test_tickets_that_waited_too_long_are_not_printed_late(make_config):
    cfg = make_config(printer={"kind": "dummy", "ticket_max_age_s": 60})
    engine = make_engine(cfg)
    worker = PrintWorker(cfg, engine)
    old, fresh = _tickets(engine, cfg, 2)
    with engine.begin() as conn:
        conn.execute(sa.update(print_jobs).where(print_jobs.c.id == old)
                     .values(created_at=utcnow() - timedelta(minutes=5)))
    assert worker.drain() == 1
    with engine.connect() as conn:
        assert jobs.get_job(conn, old)["state"] == "expired"
        assert jobs.get_job(conn, fresh)["state"] == "done"
    assert len(decode.pages(worker.connection.output)) == 1
    engine.dispose()


def test_dummy_printer_paper_out_then_back(make_config):
    cfg = make_config(printer={"kind": "dummy"})
    engine = make_engine(cfg)
    paper = {"state": ("paper_out", "no paper")}
    from kiosk.printing.connections import DummyConnection

    conn_ = DummyConnection(cfg.printer, cfg.paths.data_dir, status_source=lambda: paper["state"])
    worker = PrintWorker(cfg, engine, connection=conn_)
    _tickets(engine, cfg, 2)
    assert worker.drain() == 0 and conn_.jobs == []
    paper["state"] = ("ok", "")
    assert worker.drain() == 2
    assert worker.drain() == 0
    assert len(conn_.jobs) == 2
    engine.dispose()


def test_stale_worker_heartbeat_reads_as_offline(engine):
    with engine.begin() as conn:
        jobs.record_state(conn, "ok", now=utcnow() - timedelta(minutes=5))
    with engine.connect() as conn:
        state = jobs.printer_state(conn)
    assert state["state"] == "offline" and state["worker_alive"] is False
    assert "not reported" in state["detail"]


def test_status_bytes_and_lp_port_status_are_interpreted():
    assert status_from_bytes(b"\x12", b"\x12") == ("ok", "")
    assert status_from_bytes(b"\x12", b"\x1e")[0] == "paper_low"
    assert status_from_bytes(b"\x12", b"\x72")[0] == "paper_out"
    assert status_from_bytes(b"\x1a", b"")[0] == "offline"
    assert status_from_bytes(b"", b"")[0] == "unknown"
    assert lp_status(0x18)[0] == "ok"  # selected, no error
    assert lp_status(0x38)[0] == "paper_out"
    assert lp_status(0x08)[0] == "offline"


def test_connection_kind_is_chosen_by_name(make_config, tmp_path):
    assert isinstance(make_connection(make_config(printer={"kind": "network", "target": "10.0.0.5"})),
                      NetworkConnection)
    conn = make_connection(make_config(printer={"kind": "file"}))
    assert isinstance(conn, FileConnection) and conn.target.endswith("printer.out")
    missing = make_connection(make_config(printer={"kind": "file", "target": str(tmp_path / "nope" / "lp0")}))
    assert missing.status()[0] == "offline"
    cups = make_connection(make_config(printer={"kind": "cups", "target": "thermal"}))
    assert cups.status()[0] == "offline"  # no CUPS here: reported, not crashed
    usb = make_connection(make_config(printer={"kind": "usb"}))
    with pytest.raises(Exception, match="usb_vendor_id"):
        usb.status()


def test_only_one_process_owns_the_printer(config):
    from motcua.devicelock import DeviceBusy

    with printer_lock(config):
        with pytest.raises(DeviceBusy, match="in use by print-worker pid"):
            printer_lock(config).acquire()
    printer_lock(config).acquire()


def test_cli_print_ticket_and_slip_leave_decodable_bytes_at_the_file_path(tmp_path):
    from tests.conftest import write_config_file

    out = tmp_path / "printer.out"
    cfg_path = write_config_file(tmp_path / "c.toml", {"paths": {"data_dir": str(tmp_path / "d")},
                                                        "printer": {"kind": "file", "target": str(out)}})

    def run(*a):
        return subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(cfg_path), *a],
                              capture_output=True, text=True, timeout=60)

    first = run("print", "ticket", "--service", "A")
    assert first.returncode == 0, first.stderr
    assert "A001" in first.stdout and "Printed job 1" in first.stdout
    bad = run("print", "ticket", "--service", "ZZ")
    assert bad.returncode != 0 and "unknown service" in bad.stderr and "Traceback" not in bad.stderr
    missing = run("print", "slip", "NO-SUCH")
    assert missing.returncode != 0 and "no dossier" in missing.stderr
    from kiosk.store.ingest import Parser, ingest_batch
    from motcua.config import load_config

    cfg = load_config(cfg_path)
    engine = make_engine(cfg)
    ingest_batch(engine, Parser.from_config(cfg), [{"code": "HS-2025-0001", "status": "processing",
                                                    "procedure": "Đăng ký kết hôn", "source_version": 1}],
                 via="test", source="test")
    engine.dispose()
    slip = run("print", "slip", "HS-2025-0001")
    assert slip.returncode == 0, slip.stderr
    pages = decode.pages(out.read_bytes())
    assert len(pages) == 2 and all(p.cut and p.raster_width <= 576 for p in pages)
    qr = zxingcpp.read_barcodes(pages[1].image.convert("L"), formats=zxingcpp.BarcodeFormat.QRCode)
    assert [r.text for r in qr] == ["HS-2025-0001"]
    # a lost ticket: the official reprints job 1, the same paper again
    again = run("print", "reprint", "1")
    assert again.returncode == 0, again.stderr
    assert "Reprinting job 1 (ticket A001) as job 3" in again.stdout
    pages = decode.pages(out.read_bytes())
    assert len(pages) == 3 and pages[2].image.tobytes() == pages[0].image.tobytes()
    nothing = run("print", "reprint", "99")
    assert nothing.returncode != 0 and "no print job 99" in nothing.stderr and "Traceback" not in nothing.stderr


def test_print_worker_process_prints_jobs_submitted_while_running(tmp_path, emulator):
    from tests.conftest import write_config_file

    cfg_path = write_config_file(tmp_path / "c.toml", {
        "paths": {"data_dir": str(tmp_path / "d")},
        "printer": {"kind": "network", "target": emulator.address, "poll_s": 0.1, "timeout_s": 1}})
    from motcua.config import load_config

    cfg = load_config(cfg_path)
    engine = make_engine(cfg)
    proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "--config", str(cfg_path), "print-worker"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _tickets(engine, cfg, 2)
        _wait(lambda: len(emulator.printed) == 2, timeout=20)
        second = subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(cfg_path), "print-worker"],
                                capture_output=True, text=True, timeout=30)
        assert second.returncode != 0 and "another print worker" in second.stderr
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, out
    assert "print worker stopped (2 printed)" in out
    engine.dispose()


def test_unplugged_device_node_is_offline_and_never_created(make_config):
    target = "/dev/motcua-test-printer-unplugged"
    conn = make_connection(make_config(printer={"kind": "file", "target": target}))
    state, detail = conn.status()
    assert state == "offline" and "unplugged" in detail
    with pytest.raises(Exception, match="not there"):
        conn.send(b"\x1b@hello")
    assert not __import__("os").path.exists(target)  # as root, a plain open() would have made a file
