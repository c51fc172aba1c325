"""The modem behind python-gammu, and what its failures mean for a notice.

Only the gateway's one thread calls this class (python-gammu's StateMachine is not shared);
the one exception is `gammu.StateMachine.Abort`, which is thread-safe and is what the send
watchdog timer uses to cut a hung send short.

Facts this is built on (docs/sms.md, DOMAIN.md):
- python-gammu reports most `+CMS ERROR`s as ERR_UNKNOWN; the operator's code is only in Gammu's
  debug log, so the log is kept and the code read back from it after a failed send.
- A send that times out may have gone out: the notice becomes `uncertain`, never resent on its own,
  and the connection is rebuilt (Abort, Terminate, new StateMachine, Init).
- Settings come from a generated gammurc read with ReadConfig(): SetConfig() leaves Gammu's CNMI
  setting at 0 and then SetIncomingSMS (needed for delivery reports) fails.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import gammu

from motcua.config import ModemConfig
from sms_gateway.health import ModemState
from sms_gateway.incoming import IncomingPart
from sms_gateway.text import UCS2, Rendered

log = logging.getLogger(__name__)

_CMS_RE = re.compile(rb"CMS Error (\d+)")
DEBUG_LOG_MAX = 4 * 1024 * 1024

# 3GPP TS 24.011 / 23.040 / 27.005 codes an operator or modem gives. Permanent: this message to this
# number will never go, so it fails at once. Everything else (congestion, no network, modem busy,
# unknown codes) is retried with backoff, up to [sms] max_attempts.
PERMANENT_CMS = {
    1,    # unassigned (unallocated) number
    8,    # operator determined barring
    10,   # call barred
    21,   # short message transfer rejected
    29,   # facility rejected
    28,   # unidentified subscriber: the number does not exist
    30,   # unknown subscriber
    50,   # requested facility not subscribed
    69,   # requested facility not implemented
    95, 96, 97, 98, 99,  # invalid message / mandatory information / message type
    0xC1,  # no SC subscription
    0xC3,  # invalid SME address
    0xC4,  # destination SME barred
    0xC5,  # SM rejected: duplicate
    303,  # operation not supported
    304,  # invalid PDU mode parameter
    305,  # invalid text mode parameter
    325,  # invalid destination (some modems)
}
# Codes retried fewer times than [sms] max_attempts. 500 is the modem's "unknown error": some modems
# give it for a number the network refused, so a second one in a row fails the notice.
CMS_MAX_ATTEMPTS = {500: 2}
# Codes that say the modem or SIM, not the message, is the problem: retry, and re-read the modem.
MODEM_CMS = {310, 311, 312, 313, 314, 315, 316, 317, 318, 330, 331, 332}
CMS_TEXT = {
    1: "unassigned number", 8: "operator barring", 10: "call barred", 21: "rejected by the network",
    22: "network congestion / memory exceeded", 27: "destination out of service", 28: "unidentified subscriber",
    29: "facility rejected", 30: "unknown subscriber", 38: "network out of order", 41: "temporary network failure",
    42: "network congestion", 47: "network resources unavailable", 50: "facility not subscribed",
    300: "modem failure", 302: "operation not allowed", 304: "invalid PDU", 310: "no SIM", 311: "SIM PIN required",
    313: "SIM failure", 320: "memory failure", 322: "memory full", 330: "SMS centre address unknown",
    331: "no network service", 332: "network timeout", 500: "unknown modem error",
}

_LOST = {"ERR_DEVICEWRITEERROR", "ERR_DEVICEOPENERROR", "ERR_DEVICENOTEXIST", "ERR_NOTCONNECTED",
         "ERR_DEVICENOTWORK", "ERR_DEVICEBUSY", "ERR_DEVICELOCKED", "ERR_DEVICENOPERMISSION"}
_AMBIGUOUS = {"ERR_TIMEOUT", "ERR_DEVICEREADERROR", "ERR_ABORTED"}


class ModemFault(Exception):
    """The modem cannot send now; `state` is a ModemState."""

    def __init__(self, state: str, detail: str):
        super().__init__(detail)
        self.state = state
        self.detail = detail


# Outcomes of a failed send.
TEMPORARY = "temporary"  # not sent; try again later
PERMANENT = "permanent"  # not sent; never will be
AMBIGUOUS = "ambiguous"  # the modem may have sent it


class SendError(Exception):
    def __init__(self, outcome: str, detail: str, cms_code: int | None = None, modem_lost: bool = False,
                 accepted_refs: list[int] | None = None):
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail
        self.cms_code = cms_code
        self.modem_lost = modem_lost
        self.accepted_refs = accepted_refs or []


def classify_cms(code: int) -> str:
    return PERMANENT if code in PERMANENT_CMS else TEMPORARY


def cms_description(code: int) -> str:
    return f"CMS {code}" + (f" ({CMS_TEXT[code]})" if code in CMS_TEXT else "")


def _err_name(exc: Exception) -> str:
    return type(exc).__name__


@dataclass
class Report:
    """A delivery report: the modem's message reference and what happened to the message."""
    number: str
    reference: int
    delivered: bool | None  # None: the network is still trying (temporary status)
    # Where the modem keeps it (a stored report): freed only once the report is written (delete_stored),
    # since a report lost to a crash is the evidence an uncertain notice needed.
    location: tuple[int, int] | None = None


@dataclass
class _Incoming:
    reports: list[Report] = field(default_factory=list)
    texts: list[IncomingPart] = field(default_factory=list)
    ussd: list[dict[str, Any]] = field(default_factory=list)
    locations: list[tuple[int, int]] = field(default_factory=list)  # (folder, location) of stored SMS


def delivery_outcome(tp_status: int) -> bool | None:
    """TP-Status (23.040 9.2.3.15): 0x00-0x1F done, 0x20-0x3F still trying, 0x40 and up failed."""
    if tp_status < 0x20:
        return True
    if tp_status < 0x40:
        return None
    return False


class _Watchdog:
    """One long-lived thread that aborts a send the modem has not answered in time.

    A `threading.Timer` per send cost 1-4 ms of thread start-up on a busy two-core machine, more than
    everything else the gateway does for a message. This thread sleeps until the deadline it was
    last given; arming it wakes it only when it would otherwise sleep too long.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._sm: Any = None
        self._deadline: float | None = None
        self._sleeping_until: float | None = None  # None: waiting without a deadline (or not started)
        self._fired = False
        self._thread: threading.Thread | None = None

    def arm(self, sm: Any, timeout_s: float) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sms-send-watchdog", daemon=True)
                self._sleeping_until = None
                self._thread.start()
            self._sm, self._fired = sm, False
            self._deadline = time.monotonic() + timeout_s
            if self._sleeping_until is None or self._deadline < self._sleeping_until:
                self._cond.notify()

    def disarm(self) -> bool:
        """Stop watching; True when the watchdog fired (Abort was called) during this send."""
        with self._cond:
            self._sm, self._deadline = None, None
            return self._fired

    def shutdown(self) -> None:
        """Let the thread end (the modem is closed); the next `arm` starts a new one."""
        with self._cond:
            self._thread, self._sm, self._deadline = None, None, None
            self._cond.notify_all()

    def _run(self) -> None:
        me = threading.current_thread()
        with self._cond:
            while self._thread is me:
                if self._deadline is None:
                    self._sleeping_until = None
                    self._cond.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._sleeping_until = self._deadline
                    self._cond.wait(left)
                    continue
                sm, self._sm, self._deadline, self._fired = self._sm, None, None, True
                try:
                    sm.Abort()  # thread-safe in python-gammu; the blocked SendSMS returns ERR_ABORTED
                except Exception:  # a dead connection needs no abort
                    pass


class Modem:
    def __init__(self, cfg: ModemConfig, workdir: Path, *, delivery_reports: bool = True, text_in: bool = False):
        self.cfg = cfg
        self.workdir = workdir
        self.delivery_reports = delivery_reports
        self.route_incoming = delivery_reports or text_in  # reports and citizens' SMS come the same way
        self.rc_path = workdir / "gammurc"
        self.debug_path = workdir / "gammu-debug.log"
        self.sm: Any = None
        self.info: dict[str, Any] = {}
        self._incoming = _Incoming()
        self.pin_refused_path = workdir / "pin-refused.json"
        self._watchdog = _Watchdog()

    # --- connection -------------------------------------------------------------------------
    def write_gammurc(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Values are passed through unchanged: the same build drives a real modem, the dummy driver
        # or an emulator behind `connection = proxyat` (where device is a command line).
        self.rc_path.write_text(
            "[gammu]\n"
            f"device = {self.cfg.device}\n"
            f"connection = {self.cfg.connection}\n"
            f"model = {self.cfg.model}\n"
            f"logfile = {self.debug_path}\n"
            "logformat = textall\n",
            encoding="utf-8",
        )

    @property
    def connected(self) -> bool:
        return self.sm is not None

    def connect(self) -> dict[str, Any]:
        """Open the modem and unlock the SIM. Raises ModemFault with the state to show staff."""
        self.close()
        self.write_gammurc()
        if self.debug_path.exists() and self.debug_path.stat().st_size > DEBUG_LOG_MAX:
            self.debug_path.write_bytes(b"")
        sm = gammu.StateMachine()
        sm.ReadConfig(Filename=str(self.rc_path))
        try:
            # Init is left to Gammu's own timeouts: it spends seconds on a busy machine, and a modem
            # that is not there fails it quickly anyway.
            sm.Init()
        except gammu.GSMError as exc:
            # Terminate even a failed Init: it closes the device and, behind proxyat, collects the
            # exited proxy process, which would otherwise stay a zombie for every failed reconnect.
            try:
                sm.Terminate()
            except gammu.GSMError:
                pass
            raise ModemFault(ModemState.UNPLUGGED, f"modem not answering ({_err_name(exc)}: {_text(exc)})") from None
        self.sm = sm
        try:
            with self._guarded(sm, "setting the modem up"):
                self._unlock()
                self.info = {"model": self._safe(lambda: " ".join(x for x in sm.GetModel() if x and x != "unknown")),
                             "imei": self._safe(sm.GetIMEI)}
                if self.route_incoming:
                    sm.SetIncomingCallback(self._on_incoming)
                    try:
                        sm.SetIncomingSMS(True)
                    except gammu.GSMError as exc:
                        log.warning("modem will not route delivery reports (%s); they will be read from memory",
                                    _err_name(exc))
        except ModemFault:
            self.close()
            raise
        except gammu.GSMError as exc:
            self.close()
            raise ModemFault(ModemState.ERROR, f"modem setup failed: {_err_name(exc)}: {_text(exc)}") from None
        return self.info

    @contextmanager
    def _guarded(self, sm: Any, what: str) -> Iterator[None]:
        """Abort a command the modem does not answer within [modem] command_timeout_s.

        Gammu waits 30-40 s on a proxy or serial port that went away with a command in flight; the
        send watchdog's Abort cuts that short for every other command too, and the lost modem is
        reported at once (ModemFault UNPLUGGED) instead of after the stall.
        """
        timeout_s = self.cfg.command_timeout_s
        self._watchdog.arm(sm, timeout_s)
        try:
            yield
        except gammu.GSMError:
            if self._watchdog.disarm():
                raise self._timed_out(what, timeout_s) from None
            raise
        except BaseException:
            self._watchdog.disarm()
            raise
        if self._watchdog.disarm():  # an error swallowed inside (optional reads) hid the abort
            raise self._timed_out(what, timeout_s)

    def _timed_out(self, what: str, timeout_s: float) -> ModemFault:
        self.close()
        return ModemFault(ModemState.UNPLUGGED, f"modem did not answer within {timeout_s:g} s ({what})")

    # --- the SIM PIN ---------------------------------------------------------------------------
    # A refused PIN is remembered on disk, not in memory: the watchdog or a reboot restarts the
    # gateway, and a SIM locks to PUK after three wrong entries. Only a changed [modem] pin is tried.
    @staticmethod
    def _pin_fingerprint(pin: str) -> str:
        return hashlib.sha256(f"motcua-pin:{pin}".encode()).hexdigest()

    def refused_pin(self) -> str | None:
        """Why the configured PIN is not tried (it was refused before), or None."""
        try:
            saved = json.loads(self.pin_refused_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        if saved.get("pin") != self._pin_fingerprint(self.cfg.pin):
            return None
        return str(saved.get("detail") or "the SIM refused the configured PIN")

    def _remember_refused_pin(self, detail: str) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        tmp = self.pin_refused_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pin": self._pin_fingerprint(self.cfg.pin), "detail": detail,
                                   "at": time.time()}), encoding="utf-8")
        os.replace(tmp, self.pin_refused_path)

    def _unlock(self) -> None:
        try:
            need = self.sm.GetSecurityStatus()
        except (gammu.ERR_NOSIM, gammu.ERR_SECURITYERROR) as exc:
            raise ModemFault(ModemState.NO_SIM, f"no SIM card ({_err_name(exc)})") from None
        if need is None:
            return
        if need == "PIN" and self.cfg.pin:
            refused = self.refused_pin()
            if refused:
                raise ModemFault(ModemState.PIN_REQUIRED, refused)
            try:
                self.sm.EnterSecurityCode("PIN", self.cfg.pin)
            except gammu.GSMError as exc:
                # Never retry a wrong PIN automatically: three wrong tries lock the SIM (PUK).
                detail = (f"the SIM refused the configured PIN ({_err_name(exc)}); "
                          "not trying it again: fix [modem] pin (a changed PIN is tried once)")
                self._remember_refused_pin(detail)
                raise ModemFault(ModemState.PIN_REQUIRED, detail) from None
            self.pin_refused_path.unlink(missing_ok=True)
            return
        raise ModemFault(ModemState.PIN_REQUIRED, f"the SIM asks for its {need}; set [modem] pin" if need == "PIN"
                         else f"the SIM asks for its {need}; unlock it in a phone")

    def close(self) -> None:
        """Drop the connection; Abort first so a poisoned connection cannot block Terminate."""
        sm, self.sm = self.sm, None
        self._watchdog.shutdown()
        if sm is None:
            return
        try:
            sm.Abort()
        except Exception:  # nothing more to do with a dead connection
            pass
        try:
            sm.Terminate()
        except Exception:
            pass

    @staticmethod
    def _safe(fn: Any) -> Any:
        try:
            return fn()
        except gammu.GSMError:
            return None

    # --- health -----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """SIM, network and signal now. Raises ModemFault when the modem is gone."""
        sm = self.sm
        if sm is None:
            raise ModemFault(ModemState.UNPLUGGED, "not connected")
        try:
            # The SIM's PIN state was read at connect (Gammu spends a second on every AT+CPIN?).
            with self._guarded(sm, "reading network and signal"):
                network = sm.GetNetworkInfo()
                signal = self._safe(sm.GetSignalQuality) or {}
        except gammu.ERR_NOSIM as exc:
            raise ModemFault(ModemState.NO_SIM, f"no SIM card ({_err_name(exc)})") from None
        except gammu.GSMError as exc:
            name = _err_name(exc)
            self.close()
            state = ModemState.UNPLUGGED if name in _LOST | _AMBIGUOUS else ModemState.ERROR
            raise ModemFault(state, f"modem stopped answering ({name})") from None
        registered = network.get("State") in ("HomeNetwork", "RoamingNetwork")
        out = {
            "sim": "ready",
            "registered": registered,
            "network": network.get("NetworkName") or network.get("NetworkCode") or None,
            "signal_percent": signal.get("SignalPercent") if signal.get("SignalPercent", -1) >= 0 else None,
        }
        if not registered:
            raise ModemFault(ModemState.NO_NETWORK, f"not registered on a network ({network.get('State')})")
        return out

    # --- sending ----------------------------------------------------------------------------
    def send(self, number: str, rendered: Rendered, *, smsc: str, timeout_s: float) -> list[int]:
        """Send every part; return the modem's message references. Raises SendError."""
        sm = self.sm
        if sm is None:
            raise SendError(TEMPORARY, "modem not connected", modem_lost=True)
        parts = gammu.EncodeSMS({
            "Class": -1,
            "Unicode": rendered.encoding == UCS2,
            "Entries": [{"ID": "ConcatenatedTextLong", "Buffer": rendered.text}],
        })
        refs: list[int] = []
        for index, part in enumerate(parts):
            part["SMSC"] = {"Number": smsc} if smsc else {"Location": 1}
            part["Number"] = number
            if self.delivery_reports:
                part["Type"] = "Status_Report"  # in Gammu, a submit of this type asks for a report
            try:
                refs.append(self._send_part(sm, part, timeout_s))
            except SendError as exc:
                if refs:  # some parts went out: the citizen has half a message; an official decides
                    raise SendError(AMBIGUOUS, f"part {index + 1}/{len(parts)} failed after {len(refs)} "
                                    f"accepted: {exc.detail}", exc.cms_code, exc.modem_lost, refs) from None
                raise
        return refs

    def _send_part(self, sm: Any, part: dict[str, Any], timeout_s: float) -> int:
        offset = self._log_size()
        self._watchdog.arm(sm, timeout_s)
        try:
            ref = int(sm.SendSMS(part))
        except gammu.GSMError as exc:
            aborted = self._watchdog.disarm()
            name = _err_name(exc)
            if aborted or name in _AMBIGUOUS:
                self.close()  # the connection is poisoned after a timeout
                raise SendError(AMBIGUOUS, f"modem did not answer the send ({name}"
                                f"{f', aborted after {timeout_s:g} s' if aborted else ''}); "
                                "it may have gone out", modem_lost=True) from None
            code = self._cms_since(offset)
            if code is not None:
                raise SendError(classify_cms(code), f"operator/modem refused: {cms_description(code)}", code,
                                modem_lost=code in MODEM_CMS) from None
            if name in _LOST:
                self.close()
                raise SendError(TEMPORARY, f"modem gone ({name})", modem_lost=True) from None
            # An error reply without a CMS code (CME errors, unsupported...): the modem answered, so
            # the message did not go out.
            raise SendError(TEMPORARY, f"modem refused the send ({name}: {_text(exc)})", modem_lost=True) from None
        if self._watchdog.disarm():
            # The answer came just as the watchdog fired: the message went out, but the Abort flag
            # would fail the next command, so the connection is rebuilt before the next notice.
            log.warning("send answered at the watchdog's deadline; reconnecting the modem")
            self.close()
        return ref

    def _log_size(self) -> int:
        try:
            return self.debug_path.stat().st_size
        except FileNotFoundError:
            return 0

    def _cms_since(self, offset: int) -> int | None:
        try:
            with open(self.debug_path, "rb") as fh:
                if os.fstat(fh.fileno()).st_size < offset:
                    offset = 0
                fh.seek(offset)
                found = _CMS_RE.findall(fh.read())
        except FileNotFoundError:
            return None
        return int(found[-1]) if found else None

    # --- incoming: delivery reports, USSD ---------------------------------------------------
    def _on_incoming(self, _sm: Any, kind: str, data: Any, where: tuple[int, int] | None = None) -> None:
        if kind == "SMS" and isinstance(data, dict):
            if data.get("Type") == "Deliver" and where is not None:
                udh = data.get("UDH") or {}
                concat = None
                if udh.get("AllParts", 0) > 1 and udh.get("PartNumber", -1) > 0:
                    ref = udh.get("ID16bit", -1) if udh.get("ID16bit", -1) >= 0 else udh.get("ID8bit", 0)
                    concat = (int(ref), int(udh["AllParts"]), int(udh["PartNumber"]))
                self._incoming.texts.append(IncomingPart(
                    str(data.get("Number") or ""), str(data.get("Text") or ""), str(data.get("DateTime") or ""),
                    concat, where))
            elif data.get("Type") == "Status_Report" and "MessageReference" in data:
                self._incoming.reports.append(Report(
                    data.get("Number") or "", int(data["MessageReference"]),
                    delivery_outcome(int(data.get("DeliveryStatus") or 0)), where))
            elif data.get("Location"):
                self._incoming.locations.append((int(data.get("Folder") or 0), int(data["Location"])))
        elif kind == "USSD" and isinstance(data, dict):
            self._incoming.ussd.append(data)

    def poll(self, read: bool = True) -> list[Report]:
        """Delivery reports the modem announced since the last call. With `read`, read the device for
        new ones first; without it, only what Gammu already handed over (during a send, for one)."""
        if self.sm is None:
            return []
        if read:
            try:
                with self._guarded(self.sm, "reading incoming messages"):
                    self.sm.ReadDevice()
            except gammu.GSMError as exc:
                log.warning("reading from the modem failed: %s", _err_name(exc))
            except ModemFault as fault:  # the connection is closed; the gateway reconnects
                log.warning("%s", fault.detail)
                return []
        for folder, location in self._incoming.locations[:]:
            self._incoming.locations.remove((folder, location))
            self._read_stored(folder, location)
        reports, self._incoming.reports = self._incoming.reports, []
        return reports

    def _read_stored(self, folder: int, location: int) -> None:
        try:
            stored = self.sm.GetSMS(folder, location)
        except gammu.GSMError:
            return
        keep = [m for m in stored if m.get("Type") in ("Deliver", "Status_Report")]
        for msg in stored:
            self._on_incoming(self.sm, "SMS", {**msg, "Location": 0}, (folder, location))
        if not keep:  # messages and reports are deleted only once written (delete_stored)
            try:
                self.sm.DeleteSMS(folder, location)
            except gammu.GSMError:
                pass

    def sweep_stored(self) -> list[Report]:
        """Status reports a modem kept in memory instead of announcing them."""
        if self.sm is None:
            return []
        location: int | None = None  # None: ask for the first stored message
        seen = 0
        while seen < 100:
            try:
                if location is None:
                    msgs = self.sm.GetNextSMS(Folder=0, Start=True)
                else:
                    msgs = self.sm.GetNextSMS(Folder=0, Location=location)
            except gammu.GSMError:
                break
            seen += 1
            location = msgs[0]["Location"]
            for msg in msgs:
                # GetNextSMS gives Folder 1..4 with a location that already encodes the memory;
                # DeleteSMS wants that location with folder 0 (Gammu's AT driver).
                if msg.get("Type") in ("Deliver", "Status_Report"):
                    self._on_incoming(self.sm, "SMS", {**msg, "Location": 0}, (0, msg["Location"]))
        reports, self._incoming.reports = self._incoming.reports, []
        return reports

    def take_texts(self) -> list[IncomingPart]:
        """Citizens' messages read since the last call (still in the modem's memory)."""
        texts, self._incoming.texts = self._incoming.texts, []
        return texts

    def delete_stored(self, locations: list[tuple[int, int]]) -> None:
        """Free the memory slots of messages the gateway has stored."""
        if self.sm is None:
            return  # read again (and recognised) after the reconnect
        for folder, location in locations:
            try:
                self.sm.DeleteSMS(folder, location)
            except gammu.GSMError as exc:
                log.warning("could not delete stored SMS %s/%s: %s", folder, location, _err_name(exc))

    def ussd(self, code: str, timeout_s: float = 20.0) -> str | None:
        """Ask a USSD code (the prepaid balance); the network's answer text, or None."""
        if self.sm is None:
            return None
        try:
            self.sm.SetIncomingUSSD(True)
            self._incoming.ussd.clear()
            self.sm.DialService(code)
        except gammu.GSMError as exc:
            log.warning("USSD %s failed: %s", code, _err_name(exc))
            return None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self._incoming.ussd:
            try:
                self.sm.ReadDevice()
            except gammu.GSMError:
                return None
            time.sleep(0.05)
        if not self._incoming.ussd:
            return None
        return str(self._incoming.ussd.pop(0).get("Text") or "")


def _text(exc: Exception) -> str:
    arg = exc.args[0] if exc.args else None
    return arg.get("Text", "") if isinstance(arg, dict) else str(arg or "")
