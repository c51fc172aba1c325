#!/usr/bin/env python3
"""A small AT-command modem for tests, run by Gammu's `connection = proxyat` (it speaks AT on
stdin/stdout, like a modem on a serial port).

    device = python3 tests/modem/atmodem.py DIR

DIR holds:
- `scenario.json` (written by the test, re-read at every command): faults to inject.
    pin: "1234" | null        SIM asks for this PIN (until entered, in this process)
    sim: true                 false: no SIM card (+CME ERROR: 10)
    network: "home"           "home", "roaming", "searching", "denied", "none"
    signal: 20                +CSQ rssi 0..31
    cms_errors: [38, 1]       one +CMS ERROR per send, in order, consumed (counted in state.json)
    hang_sends: 0             this many sends get no answer at all (consumed); with
                              accept_before_hang the network took the message first
    hang_to: {"+8491...": 2}  this many sends to this number get no answer (consumed)
    exit_on_send: 0           this many sends make the modem vanish before answering (consumed);
                              with accept_before_exit the PDU is recorded as sent first
    unplugged: false          true: the process exits at once (a modem that is not there)
    unplug_after_sends: 0     after answering this many sends the modem vanishes and stays
                              unplugged (scenario "unplugged" set true) until the test replugs it
    status_reports: "delivered"  "delivered", "failed" or null: a +CDS report after each send
    store_status_reports: false  true: the report goes into the modem's memory (announced with
                              +CDSI) the moment the network takes the message, before +CMGS is
                              answered, so it is still there for the next host after a crash
    ussd: "TKC 50.000d"       answer to AT+CUSD
    hang_commands: {"AT+CSQ": 1}  this many of these commands (by prefix) get no answer (consumed)
    exit_on_command: {"AT+CSQ": 1}  this many of these commands make the modem vanish with the
                              command in flight; it then stays unplugged until the test replugs it
- `sent.jsonl`: every PDU the modem accepted ({"ref", "pdu", "t"}), written and fsynced BEFORE the
  modem answers +CMGS, so a message the gateway may have lost track of is still counted here.
- `state.json`: the message-reference counter, consumed fault counters (survive "replugs") and
  `wrong_pins`, how many wrong PINs were entered (a real SIM locks to PUK after 3).
- `commands.log`: every command received, for debugging.
- `starts.log`: one line per process start ("plugged" or "unplugged"), so a test can count reconnects.
- `memory.json`: the modem's message memory ("ME"): received SMS-DELIVER and stored status reports,
  read with AT+CMGR / AT+CMGL (PDU mode), deleted with AT+CMGD. A test delivers an incoming SMS by
  adding PDUs with `deliver(...)` (tests/modem/harness.py); the running emulator announces each with
  `+CMTI: "ME",index` within ~0.1 s, and a message that arrived while no host ran waits in memory.

Unknown commands answer ERROR (Gammu's probing depends on it).
"""
from __future__ import annotations

import fcntl
import json
import os
import select
import sys
import time
from pathlib import Path

DIR = Path(sys.argv[1])
CTRL_Z, ESC = b"\x1a", b"\x1b"
# After answering AT+CPIN?, Gammu's AT driver reads once more for "the possible left over OK" (some
# modems send it late), and that read waits for data until the wall clock's next second: 0-1 s per
# connect, ~0.5 s on average, in every test that starts a gateway. An empty line (line noise a modem
# may send at any time, ignored by Gammu like the framing around every answer) this long after the
# answer ends the wait; when the host's next command comes first, none is sent.
BLANK_LINE_AFTER_S = 0.02


def load(name: str, default: dict) -> dict:
    try:
        return json.loads((DIR / name).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return dict(default)


def save_state(state: dict) -> None:
    tmp = DIR / "state.json.tmp"
    tmp.write_text(json.dumps(state))
    os.replace(tmp, DIR / "state.json")


def store(kind: str, pdu: str) -> int:
    """Put one PDU into the message memory; returns its index. Locked: the test writes here too."""
    with open(DIR / "memory.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        memory = load("memory.json", {"next": 1, "messages": []})
        index = memory["next"]
        memory["next"] = index + 1
        memory["messages"].append({"index": index, "kind": kind, "pdu": pdu, "stat": 0, "announced": False})
        tmp = DIR / "memory.json.tmp"
        tmp.write_text(json.dumps(memory))
        os.replace(tmp, DIR / "memory.json")
    return index


def update_memory(change) -> list[dict]:
    """Apply `change(messages) -> messages` under the lock; returns the new list."""
    with open(DIR / "memory.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        memory = load("memory.json", {"next": 1, "messages": []})
        memory["messages"] = change(memory["messages"])
        tmp = DIR / "memory.json.tmp"
        tmp.write_text(json.dumps(memory))
        os.replace(tmp, DIR / "memory.json")
        return memory["messages"]


class Modem:
    def __init__(self) -> None:
        self.out = sys.stdout.buffer
        self.echo = True
        self.pin_ok = False
        self.pdu_len: int | None = None
        self.mem = "ME"  # the memory AT+CPMS chose; messages live in "ME" only
        self.log = open(DIR / "commands.log", "a", buffering=1)
        self.blank_line_at: float | None = None

    def scenario(self) -> dict:
        return load("scenario.json", {})

    def write(self, data: bytes) -> None:
        self.out.write(data)
        self.out.flush()

    def reply(self, *lines: str, final: str = "OK") -> None:
        body = b"".join(b"\r\n" + line.encode() + b"\r\n" for line in lines)
        self.write(body + b"\r\n" + final.encode() + b"\r\n")

    def consume(self, key: str) -> bool:
        """Take one unit of a counted fault (state.json remembers how many were used)."""
        scen, state = self.scenario(), load("state.json", {})
        used = state.get(f"used_{key}", 0)
        if used < int(scen.get(key) or 0):
            state[f"used_{key}"] = used + 1
            save_state(state)
            return True
        return False

    def next_cms(self) -> int | None:
        scen, state = self.scenario(), load("state.json", {})
        codes = scen.get("cms_errors") or []
        used = state.get("used_cms", 0)
        if used < len(codes):
            state["used_cms"] = used + 1
            save_state(state)
            return int(codes[used])
        return None

    def consume_keyed(self, key: str, command: str) -> bool:
        """Take one unit of a per-command fault ({"AT+CSQ": 1}); the prefix is matched."""
        scen, state = self.scenario(), load("state.json", {})
        for prefix, count in (scen.get(key) or {}).items():
            if command.startswith(prefix.upper()):
                used = state.get(f"used_{key}_{prefix}", 0)
                if used < int(count):
                    state[f"used_{key}_{prefix}"] = used + 1
                    save_state(state)
                    return True
        return False

    def unplug(self, why: str) -> None:
        """Vanish and stay unplugged (scenario "unplugged") until the test plugs the modem back."""
        scen = self.scenario()
        scen["unplugged"] = True
        tmp = DIR / "scenario.json.tmp"
        tmp.write_text(json.dumps(scen))
        os.replace(tmp, DIR / "scenario.json")
        self.log.write(f"UNPLUGGED {why}\n")
        os._exit(0)

    def locked(self) -> bool:
        scen = self.scenario()
        return bool(scen.get("pin")) and not self.pin_ok

    # --- commands --------------------------------------------------------------------------
    def command(self, raw: str) -> None:
        self.log.write(f"{time.time():.3f} {raw}\n")
        if self.echo:
            self.write(raw.encode() + b"\r")
        cmd = raw.strip()
        up = cmd.upper()
        scen = self.scenario()
        if self.consume_keyed("hang_commands", up):
            self.log.write(f"HANG on {cmd}\n")
            return
        if self.consume_keyed("exit_on_command", up):
            self.unplug(f"with {cmd} in flight")
        if up in ("AT", "ATZ", "AT&F", "ATV1", "ATQ0") or up.startswith("AT+CMEE="):
            return self.reply()
        if up in ("ATE0", "ATE1"):
            self.echo = up == "ATE1"
            return self.reply()
        if up in ("AT+CGMI", "AT+GMI"):
            return self.reply("EMUL")
        if up in ("AT+CGMM", "AT+GMM"):
            return self.reply("ATMODEM-1")
        if up in ("AT+CGMR", "AT+GMR"):
            return self.reply("1.0")
        if up in ("AT+CGSN", "AT+GSN"):
            return self.reply("490154203237518")
        if up == "AT+CPIN?":
            if scen.get("sim", True) is False:
                return self.reply(final="+CME ERROR: 10")
            self.blank_line_at = time.monotonic() + BLANK_LINE_AFTER_S  # see BLANK_LINE_AFTER_S
            return self.reply("+CPIN: SIM PIN" if self.locked() else "+CPIN: READY")
        if up.startswith("AT+CPIN="):
            given = cmd.split("=", 1)[1].strip('"')
            if given == str(scen.get("pin") or ""):
                self.pin_ok = True
                return self.reply()
            state = load("state.json", {})
            state["wrong_pins"] = state.get("wrong_pins", 0) + 1
            save_state(state)
            return self.reply(final="+CME ERROR: 16")
        if scen.get("sim", True) is False and up.startswith(("AT+CIMI", "AT+CMGS", "AT+CSCA", "AT+CPMS")):
            return self.reply(final="+CME ERROR: 10")
        if self.locked() and up.startswith(("AT+CIMI", "AT+CMGS", "AT+CSCA", "AT+CUSD", "AT+CPMS")):
            return self.reply(final="+CME ERROR: 11")
        if up == "AT+CGATT?":
            return self.reply("+CGATT: 1")
        if up == "AT+CIMI":
            return self.reply("452040123456789")
        if up == "AT+CSQ":
            return self.reply(f"+CSQ: {int(scen.get('signal', 20))},99")
        if up.startswith("AT+CREG?") or up.startswith("AT+CGREG?") or up.startswith("AT+CEREG?"):
            stat = {"home": 1, "roaming": 5, "searching": 2, "denied": 3, "none": 0}[scen.get("network", "home")]
            name = up[2:up.index("?")]
            return self.reply(f"{name}: 2,{stat},\"1A2B\",\"C0FE\",7")
        if up == "AT+COPS?":
            if scen.get("network", "home") in ("home", "roaming"):
                return self.reply('+COPS: 0,2,"45204",7')
            return self.reply("+COPS: 0")
        if up == "AT+CNMI=?":
            return self.reply("+CNMI: (0-2),(0-3),(0,2),(0,1),(0,1)")
        if up == "AT+CSCS=?":
            return self.reply('+CSCS: ("IRA","GSM","UCS2")')
        if up.startswith(("AT+CREG=", "AT+CGREG=", "AT+CEREG=", "AT+COPS=", "AT+CMGF=0", "AT+CSCS=",
                          "AT+CNMI=", "AT+CSMS=", "AT+CNMA", "AT+CSCB=")):
            return self.reply()
        if up == "AT+CMGF=?":
            return self.reply("+CMGF: (0)")
        if up == "AT+CSCS?":
            return self.reply('+CSCS: "GSM"')
        if up == "AT+CSCA?":
            return self.reply('+CSCA: "+84980200030",145')
        if up.startswith("AT+CSCA="):
            return self.reply()
        if up == "AT+CPMS=?":
            return self.reply('+CPMS: ("SM","ME"),("SM","ME"),("SM","ME")')
        if up.startswith("AT+CPMS="):
            self.mem = cmd.split("=", 1)[1].split(",")[0].strip('"').upper()
        if up.startswith("AT+CPMS"):
            used = len(load("memory.json", {"messages": []})["messages"]) if self.mem == "ME" else 0
            return self.reply(f'+CPMS: {used},30,{used},30,{used},30')
        if up.startswith("AT+CMGL"):
            # PDU mode: AT+CMGL=4 lists every message; 0 unread, 1 read.
            want = cmd.split("=", 1)[1].strip() if "=" in cmd else "0"
            lines = []
            for msg in self.read_memory(lambda m: self.mem == "ME" and (want == "4" or str(m["stat"]) == want)):
                lines += [f'+CMGL: {msg["index"]},{msg["stat"]},,{len(msg["pdu"]) // 2 - 1}', msg["pdu"]]
            return self.reply(*lines)
        if up.startswith("AT+CMGR="):
            index = int(cmd.split("=", 1)[1])
            found = self.read_memory(lambda m: self.mem == "ME" and m["index"] == index)
            if not found:
                return self.reply(final="+CMS ERROR: 321")  # invalid memory index
            msg = found[0]
            return self.reply(f'+CMGR: {msg["stat"]},,{len(msg["pdu"]) // 2 - 1}', msg["pdu"])
        if up.startswith("AT+CMGD="):
            index = int(cmd.split("=", 1)[1].split(",")[0])
            if self.mem == "ME":
                update_memory(lambda msgs: [m for m in msgs if m["index"] != index])
            return self.reply()
        if up.startswith("AT+CUSD="):
            text = scen.get("ussd", "TKC 50.000d, HSD 31/12/2026")
            self.reply()
            hexed = text.encode("utf-16-be").hex().upper()
            return self.write(f'\r\n+CUSD: 0,"{hexed}",72\r\n'.encode())
        if up.startswith("AT+CMGS="):
            self.pdu_len = int(cmd.split("=", 1)[1])
            return self.write(b"\r\n> ")
        return self.reply(final="ERROR")

    def pdu(self, body: bytes) -> None:
        self.pdu_len = None
        pdu = body.decode("ascii", "replace").strip()
        scen = self.scenario()
        if scen.get("hang_to"):
            from tests.modem.pdu import decode_submit
            if self.consume_keyed("hang_to", decode_submit(pdu).number):
                self.log.write(f"HANG on {pdu}\n")
                return
        if self.consume("hang_sends"):
            if scen.get("accept_before_hang"):
                ref = self.record(pdu)
                if scen.get("status_reports") and scen.get("store_status_reports"):
                    store("report", "00" + status_report_pdu(ref, pdu, scen["status_reports"] == "delivered"))
            self.log.write(f"HANG on {pdu}\n")
            return  # never answer this one
        if self.consume("exit_on_send"):
            if scen.get("accept_before_exit"):
                self.record(pdu)
            self.log.write("EXIT (unplugged during send)\n")
            os._exit(0)
        network = scen.get("network", "home")
        if network not in ("home", "roaming"):
            return self.reply(final="+CMS ERROR: 331")
        code = self.next_cms()
        if code is not None:
            return self.reply(final=f"+CMS ERROR: {code}")
        ref = self.record(pdu)
        report = scen.get("status_reports")
        if report and scen.get("store_status_reports"):
            # The network's report reaches the modem whatever becomes of the host that sent it.
            store("report", "00" + status_report_pdu(ref, pdu, report == "delivered"))
        self.reply(f"+CMGS: {ref}")
        if self.consume("unplug_after_sends"):
            self.unplug("after a send")
        if report and not scen.get("store_status_reports"):
            tpdu = status_report_pdu(ref, pdu, report == "delivered")
            self.write(f"\r\n+CDS: {len(tpdu) // 2}\r\n00{tpdu}\r\n".encode())

    def read_memory(self, which) -> list[dict]:
        """Messages matching `which`, marked read (stat 1) as a modem does on reading them."""
        out: list[dict] = []

        def mark(msgs: list[dict]) -> list[dict]:
            for m in msgs:
                if which(m):
                    out.append(dict(m))
                    m["stat"] = max(m["stat"], 1)
            return msgs
        update_memory(mark)
        return out

    def announce(self) -> None:
        """Tell the host (+CMTI / +CDSI) about messages that entered the memory since the last look."""
        fresh: list[dict] = []

        def take(msgs: list[dict]) -> list[dict]:
            for m in msgs:
                if not m.get("announced"):
                    m["announced"] = True
                    fresh.append(m)
            return msgs
        if not (DIR / "memory.json").exists():
            return
        update_memory(take)
        for m in fresh:
            tag = "+CDSI" if m["kind"] == "report" else "+CMTI"
            self.write(f'\r\n{tag}: "ME",{m["index"]}\r\n'.encode())

    def record(self, pdu: str) -> int:
        state = load("state.json", {})
        ref = state.get("next_ref", 0) % 256
        state["next_ref"] = ref + 1
        with open(DIR / "sent.jsonl", "a") as fh:
            fh.write(json.dumps({"ref": ref, "pdu": pdu, "t": time.time()}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        save_state(state)
        return ref

    def run(self) -> None:
        buf = b""
        fd = sys.stdin.buffer.fileno()
        while True:
            wait = 0.1 if self.blank_line_at is None else max(0.0, min(0.1, self.blank_line_at - time.monotonic()))
            readable, _, _ = select.select([fd], [], [], wait)
            if not readable:
                if self.blank_line_at is not None and time.monotonic() >= self.blank_line_at:
                    self.blank_line_at = None
                    self.write(b"\r\n")
                if self.pdu_len is None:  # never inside a command's answer
                    self.announce()
                continue
            self.blank_line_at = None  # the host sent its next command: it was not waiting
            chunk = os.read(fd, 4096)
            if not chunk:
                return  # the gateway went away (or killed us): a modem without a host
            buf += chunk
            while True:
                if self.pdu_len is not None:
                    for mark in (CTRL_Z, ESC):
                        if mark in buf:
                            body, buf = buf.split(mark, 1)
                            if mark == CTRL_Z:
                                self.pdu(body)
                            else:
                                self.pdu_len = None
                                self.reply()
                            break
                    else:
                        break
                    continue
                if b"\r" not in buf:
                    break
                line, buf = buf.split(b"\r", 1)
                line = line.strip(b"\n")
                if line.strip():
                    self.command(line.decode("ascii", "replace"))


def status_report_pdu(ref: int, submit_pdu: str, delivered: bool) -> str:
    """An SMS-STATUS-REPORT for the message with this reference, to the submit's recipient."""
    from tests.modem.pdu import submit_destination_field
    addr = submit_destination_field(submit_pdu)
    ts = "52110291000000"  # semi-octet timestamp 2025-11-20 19:00:00 +0
    st = "00" if delivered else "41"  # 0x41: permanent error, incompatible destination
    return "06" + f"{ref:02X}" + addr + ts + ts + st


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    unplugged = bool(load("scenario.json", {}).get("unplugged"))
    with open(DIR / "starts.log", "a") as fh:
        fh.write(f"{os.getpid()} {'unplugged' if unplugged else 'plugged'}\n")
    if unplugged:
        sys.exit(0)
    Modem().run()
