"""How the print worker reaches the printer: one small class per connection kind, chosen by name.

Each wraps a python-escpos printer class (Usb, Serial, Network, LP for a raw CUPS queue, File,
Dummy) and adds what the worker needs: `status()` where the connection can tell paper-out or
offline, and `send(bytes)` for one job's ready-made ESC/POS bytes.
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import socket
import stat
import struct
import subprocess
from pathlib import Path
from typing import Callable

from escpos.constants import RT_MASK_LOWPAPER, RT_MASK_NOPAPER, RT_MASK_ONLINE, RT_STATUS_ONLINE, RT_STATUS_PAPER
from escpos.exceptions import DeviceNotFoundError
from escpos.printer import LP, Dummy, File, Network, Serial, Usb

from kiosk.printing.states import CANNOT_PRINT, PrinterState
from motcua.config import Config, PrinterConfig

log = logging.getLogger(__name__)

# Short names for the states the worker records (defined in kiosk/printing/states.py;
# jobs.printer_state reports paper_low as ok with a flag).
OK, PAPER_LOW, PAPER_OUT, OFFLINE, UNKNOWN = (PrinterState.OK, PrinterState.PAPER_LOW, PrinterState.PAPER_OUT,
                                             PrinterState.OFFLINE, PrinterState.UNKNOWN)


class PrinterOffline(Exception):
    """The printer cannot be reached; nothing of the job was sent."""


class SendFailed(Exception):
    """Sending broke off part-way (the paper may show part of the job)."""


def status_from_bytes(online: bytes | None, paper: bytes | None) -> tuple[str, str]:
    """Interpret the answers to DLE EOT 1 (printer) and DLE EOT 4 (paper sensor)."""
    if not online and not paper:
        return UNKNOWN, "the printer does not answer status requests"
    if online and online[0] & RT_MASK_ONLINE:
        return OFFLINE, "the printer reports it is offline (cover open, error or feeding)"
    if paper:
        if paper[0] & RT_MASK_NOPAPER == RT_MASK_NOPAPER:
            return PAPER_OUT, "paper end sensor: no paper"
        if paper[0] & RT_MASK_LOWPAPER == RT_MASK_LOWPAPER:
            return PAPER_LOW, "paper near-end sensor: paper low"
    return OK, ""


class Connection:
    """Base: subclasses build `self.printer` (a python-escpos object) in `_make()`."""

    kind = "base"

    def __init__(self, pcfg: PrinterConfig, data_dir: Path):
        self.pcfg = pcfg
        self.data_dir = data_dir
        self.printer = None

    @property
    def target(self) -> str:
        return self.pcfg.target

    def describe(self) -> str:
        return f"{self.kind} {self.target}".strip()

    def _make(self):
        raise NotImplementedError

    def open(self) -> None:
        if self.printer is not None:
            return
        printer = self._make()
        try:
            printer.open(raise_not_found=True)
        except (DeviceNotFoundError, OSError, ValueError, AssertionError) as exc:
            raise PrinterOffline(f"cannot open {self.describe()}: {exc}".replace("\n", " ")) from None
        except Exception as exc:  # drivers raise their own errors (usb.core, serial); all mean "not reachable"
            raise PrinterOffline(f"cannot open {self.describe()}: {type(exc).__name__}: {exc}") from None
        self.printer = printer

    def close(self) -> None:
        printer, self.printer = self.printer, None
        if printer is not None:
            try:
                printer.close()
            except Exception:  # closing a dead device must not stop the worker
                log.debug("closing %s failed", self.describe(), exc_info=True)

    def status(self) -> tuple[str, str]:
        """(state, detail) as far as this kind can tell; UNKNOWN when it cannot."""
        self.open()
        return UNKNOWN, "this connection cannot report the printer's state"

    def send(self, data: bytes) -> None:
        self.open()
        try:
            self.printer._raw(data)
            self._after_send()
        except Exception as exc:
            self.close()
            raise SendFailed(f"sending to {self.describe()} failed: {type(exc).__name__}: {exc}") from None

    def _after_send(self) -> None:
        pass


class _Queryable(Connection):
    """Kinds with a two-way link (USB, serial, network) answer DLE EOT status requests."""

    answers = True  # set False after a printer ignored a request: do not wait for it every time

    def status(self) -> tuple[str, str]:
        self.open()
        if not self.answers:
            return UNKNOWN, "the printer does not answer status requests"
        try:
            online = bytes(self.printer.query_status(RT_STATUS_ONLINE))
            paper = bytes(self.printer.query_status(RT_STATUS_PAPER)) if online else b""
        except (socket.timeout, TimeoutError):
            self.answers = False
            return UNKNOWN, "the printer does not answer status requests"
        except Exception as exc:  # a broken link means offline
            self.close()
            return OFFLINE, f"status request to {self.describe()} failed: {type(exc).__name__}: {exc}"
        if not online:
            self.answers = False
        return status_from_bytes(online, paper)

    def close(self) -> None:
        super().close()
        self.answers = True


def _hex(value: str, what: str) -> int:
    try:
        return int(value, 16)
    except ValueError:
        raise ValueError(f"[printer] {what} must be hexadecimal like 0x0416, got {value!r}") from None


class UsbConnection(_Queryable):
    kind = "usb"

    def describe(self) -> str:
        return f"usb {self.pcfg.usb_vendor_id}:{self.pcfg.usb_product_id}"

    def _make(self):
        if not self.pcfg.usb_vendor_id or not self.pcfg.usb_product_id:
            raise PrinterOffline("[printer] usb_vendor_id and usb_product_id are needed for the usb kind")
        return Usb(_hex(self.pcfg.usb_vendor_id, "usb_vendor_id"), _hex(self.pcfg.usb_product_id, "usb_product_id"),
                   timeout=int(self.pcfg.timeout_s * 1000), in_ep=self.pcfg.usb_in_ep, out_ep=self.pcfg.usb_out_ep,
                   profile=None)


class SerialConnection(_Queryable):
    kind = "serial"

    def _make(self):
        return Serial(devfile=self.target or "/dev/ttyUSB0", baudrate=self.pcfg.baudrate,
                      timeout=self.pcfg.timeout_s)


class NetworkConnection(_Queryable):
    kind = "network"

    def describe(self) -> str:
        host, port = self._address()
        return f"network {host}:{port}"

    def _address(self) -> tuple[str, int]:
        host, _, port = self.target.rpartition(":") if self.target.count(":") == 1 else (self.target, "", "")
        return (host or "127.0.0.1"), int(port) if port else self.pcfg.network_port

    def _make(self):
        host, port = self._address()
        return Network(host=host, port=port, timeout=self.pcfg.timeout_s)


class CupsConnection(Connection):
    """A raw CUPS queue, through `lp -o raw` (python-escpos LP): no pycups build needed."""

    kind = "cups"

    def _make(self):
        if not shutil.which("lp"):
            raise PrinterOffline("the lp command is missing (install cups-client)")
        return LP(printer_name=self.target)

    def status(self) -> tuple[str, str]:
        if not shutil.which("lpstat"):
            return OFFLINE, "lpstat is missing (install cups-client)"
        proc = subprocess.run(["lpstat", "-p", self.target] if self.target else ["lpstat", "-d"],
                              capture_output=True, text=True, timeout=self.pcfg.timeout_s)
        text = (proc.stdout + proc.stderr).strip()
        if proc.returncode != 0:
            return OFFLINE, f"CUPS: {text or 'queue not found'}"
        if "disabled" in text:
            return OFFLINE, f"CUPS: {text.splitlines()[0]}"
        return UNKNOWN, "CUPS accepts jobs; it does not report paper"

    def send(self, data: bytes) -> None:
        super().send(data)
        self.close()  # closing the LP pipe hands the job to CUPS


# Linux parallel/USB printer class driver (usblp): the port status byte, see linux/lp.h.
LPGETSTATUS = 0x060B
LP_POUTPA, LP_PSELECD, LP_PERRORP = 0x20, 0x10, 0x08


def lp_status(status_byte: int) -> tuple[str, str]:
    if status_byte & LP_POUTPA:
        return PAPER_OUT, "printer port reports paper out"
    if not status_byte & LP_PSELECD:
        return OFFLINE, "printer port reports the printer is not selected (offline)"
    if not status_byte & LP_PERRORP:
        return OFFLINE, "printer port reports an error"
    return OK, ""


class FileConnection(Connection):
    """A device node such as /dev/usb/lp0, or any file: raw bytes are written there."""

    kind = "file"

    @property
    def target(self) -> str:
        return self.pcfg.target or str(self.data_dir / "printer.out")

    def _is_device(self) -> bool:
        try:
            return stat.S_ISCHR(os.stat(self.target).st_mode)
        except OSError:
            return False

    def _missing_device(self) -> bool:
        """A path under /dev that is not there is an unplugged printer, never a file to create
        (as root, opening it for writing would leave a regular file where the device belongs)."""
        return Path(self.target).resolve().is_relative_to("/dev") and not self._is_device()

    def _make(self):
        is_device = self._is_device()
        missing_device = self._missing_device()

        class AppendingFile(File):
            """python-escpos File opens with "wb"; a regular file keeps every job, so append."""

            def open(self, raise_not_found: bool = True) -> None:
                if is_device:
                    return super().open(raise_not_found)
                if missing_device:
                    raise DeviceNotFoundError(f"printer device {self.devfile} is not there (unplugged?)")
                try:
                    self.device = open(self.devfile, "ab")
                except OSError as exc:
                    self.device = None
                    raise DeviceNotFoundError(f"Could not open the specified file {self.devfile}: {exc}") from None

        return AppendingFile(devfile=self.target)

    def status(self) -> tuple[str, str]:
        if self._is_device():
            try:
                fd = os.open(self.target, os.O_RDONLY | os.O_NONBLOCK)
            except OSError as exc:
                return OFFLINE, f"cannot open {self.target}: {exc.strerror}"
            try:
                raw = fcntl.ioctl(fd, LPGETSTATUS, struct.pack("i", 0))
                return lp_status(struct.unpack("i", raw)[0])
            except OSError as exc:
                if exc.errno in (errno.ENOTTY, errno.EINVAL):
                    return UNKNOWN, f"{self.target} cannot report paper state"
                return OFFLINE, f"{self.target}: {exc.strerror}"
            finally:
                os.close(fd)
        if self._missing_device():
            return OFFLINE, f"printer device {self.target} is not there (unplugged?)"
        parent = Path(self.target).parent
        if not parent.is_dir():
            return OFFLINE, f"folder {parent} does not exist"
        if not os.access(parent, os.W_OK) and not os.access(self.target, os.W_OK):
            return OFFLINE, f"{self.target} is not writable"
        return OK, ""

    def send(self, data: bytes) -> None:
        super().send(data)
        self.close()  # a device node is reopened per job: it may vanish and come back (USB replug)


class DummyConnection(Connection):
    """Keeps the bytes in memory (python-escpos Dummy). `status_source` lets a test or a demo
    play a printer whose paper runs out."""

    kind = "dummy"

    def __init__(self, pcfg: PrinterConfig, data_dir: Path, status_source: Callable[[], tuple[str, str]] | None = None):
        super().__init__(pcfg, data_dir)
        self.status_source = status_source
        self.jobs: list[bytes] = []

    def _make(self):
        return Dummy()

    def open(self) -> None:
        if self.printer is None:
            self.printer = self._make()

    def status(self) -> tuple[str, str]:
        return self.status_source() if self.status_source else (OK, "")

    def send(self, data: bytes) -> None:
        state, detail = self.status()
        if state in CANNOT_PRINT:
            raise PrinterOffline(detail or state)
        self.open()
        self.printer.clear()
        self.printer._raw(data)
        self.jobs.append(self.printer.output)

    @property
    def output(self) -> bytes:
        return b"".join(self.jobs)


KINDS: dict[str, type[Connection]] = {
    c.kind: c for c in (UsbConnection, SerialConnection, NetworkConnection, CupsConnection, FileConnection,
                        DummyConnection)
}


def make_connection(cfg: Config) -> Connection:
    """The connection for `[printer] kind`."""
    return KINDS[cfg.printer.kind](cfg.printer, cfg.paths.data_dir)
