"""A one-off look at the modem for `kiosk doctor`: open it briefly with the configured settings,
read SIM, network, signal and SMS centre, close it again.

Only for when the gateway is not running: the modem has one owner (docs/sms.md). `probe_modem` is
the one way in, so a check of the gateway's device lock belongs at its top, before the modem is opened.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from motcua.config import ModemConfig
from motcua.devicelock import DeviceBusy, DeviceLock, for_device
from sms_gateway.health import ModemState


@dataclass
class ModemProbe:
    """What the modem answered. `state` is OK only when it is usable for sending."""
    state: ModemState
    detail: str = ""
    model: str | None = None
    sim: str | None = None
    registered: bool | None = None
    network: str | None = None
    signal_percent: int | None = None
    smsc_on_sim: str = ""  # the SMS centre the SIM reports ("" when it does not say)
    seconds: float = 0.0
    in_use_by: str = ""  # the modem's owner ("sms-gateway pid 812") when it was not opened for that reason


def modem_lock(cfg: ModemConfig, data_dir: Path) -> DeviceLock:
    """The lock the gateway holds for as long as it runs; one per modem device."""
    return for_device(data_dir, "modem", "sms-gateway", cfg.device)


def probe_modem(cfg: ModemConfig, data_dir: Path) -> ModemProbe:
    """Open the modem with `cfg`, read what it says and close it; never raises for a modem fault.
    A modem whose lock (in `data_dir`) is held is not opened: the answer says who holds it."""
    start = time.monotonic()
    lock = modem_lock(cfg, data_dir)
    try:
        lock.acquire()
    except DeviceBusy as busy:
        return ModemProbe(ModemState.ERROR, str(busy), in_use_by=str(busy.holder or "another process"))
    try:
        return _probe(cfg, start)
    finally:
        lock.release()


def _probe(cfg: ModemConfig, start: float) -> ModemProbe:
    # python-gammu only here: every kiosk process imports sms_gateway.api, few ever probe a modem.
    from sms_gateway.modem import Modem, ModemFault

    with tempfile.TemporaryDirectory(prefix="modem-probe-") as workdir:
        modem = Modem(cfg, Path(workdir), delivery_reports=False)
        try:
            info = modem.connect()
            status = modem.status()
            try:
                smsc = (modem.sm.GetSMSC(Location=1) or {}).get("Number") or ""
            except Exception:  # some modems refuse; the caller judges an empty SMSC
                smsc = ""
        except ModemFault as fault:
            return ModemProbe(ModemState(fault.state), fault.detail, seconds=_since(start))
        except Exception as exc:  # python-gammu raises its own errors on odd configs
            return ModemProbe(ModemState.ERROR, f"{type(exc).__name__}: {exc}", seconds=_since(start))
        finally:
            modem.close()
    return ModemProbe(ModemState.OK, model=info.get("model"), sim=status.get("sim"),
                      registered=status.get("registered"), network=status.get("network"),
                      signal_percent=status.get("signal_percent"), smsc_on_sim=smsc, seconds=_since(start))


def _since(start: float) -> float:
    return round(time.monotonic() - start, 1)
