"""Test helpers: an emulated modem folder, its decoded PDUs, and a gateway config pointing at it."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.modem.pdu import Submit, decode_submit

ATMODEM = Path(__file__).with_name("atmodem.py")
SMSC = "+84980200030"

# Fast settings for tests: no pacing, no quiet hours, short timeouts and retry delays.
FAST_SMS = {"pace_s": 0, "pace_jitter_s": 0, "quiet_start": "00:00:00", "quiet_end": "00:00:00",
            "balance_ussd": "", "retry_base_s": 0.2, "retry_max_s": 1.0, "poll_s": 0.1}


def _store(root: Path, kind: str, pdu: str) -> int:
    import fcntl
    import os

    with open(root / "memory.lock", "a") as lock:  # the same lock atmodem.store takes
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = root / "memory.json"
        memory = json.loads(path.read_text()) if path.exists() else {"next": 1, "messages": []}
        index = memory["next"]
        memory["next"] = index + 1
        memory["messages"].append({"index": index, "kind": kind, "pdu": pdu, "stat": 0, "announced": False})
        tmp = root / "memory.json.tmp2"
        tmp.write_text(json.dumps(memory))
        os.replace(tmp, path)
    return index


class EmulatedModem:
    """The folder an `atmodem.py` process works in; the test writes its scenario and reads its PDUs."""

    def __init__(self, root: Path):
        self.dir = root
        self.dir.mkdir(parents=True, exist_ok=True)
        self.scenario(status_reports="delivered")

    def scenario(self, **values: Any) -> None:
        path = self.dir / "scenario.json"
        current = json.loads(path.read_text()) if path.exists() else {}
        current.update(values)
        tmp = self.dir / "scenario.tmp"
        tmp.write_text(json.dumps(current))
        tmp.replace(path)

    def deliver(self, sender: str, text: str, *, ucs2: bool = False, concat_ref: int = 0x42,
                part_chars: int | None = None) -> list[int]:
        """A citizen's SMS reaches the modem: its PDUs go into the modem's memory (the running
        emulator announces them with +CMTI). Returns the memory indexes."""
        from tests.modem.pdu import deliver_pdus

        out = []
        for pdu in deliver_pdus(sender, text, ucs2=ucs2, concat_ref=concat_ref, part_chars=part_chars):
            out.append(_store(self.dir, "deliver", pdu))
        return out

    def memory(self) -> list[dict[str, Any]]:
        """What is left in the modem's message memory."""
        path = self.dir / "memory.json"
        return json.loads(path.read_text())["messages"] if path.exists() else []

    def raw_sent(self) -> list[dict[str, Any]]:
        path = self.dir / "sent.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def sent(self) -> list[Submit]:
        return [decode_submit(r["pdu"]) for r in self.raw_sent()]

    def messages(self) -> list[tuple[str, str, str]]:
        """(number, encoding, full text) per message, concatenated parts joined in order."""
        out: list[tuple[str, str, str]] = []
        groups: dict[tuple[str, int], list[Submit]] = {}
        for s in self.sent():
            if s.concat is None:
                out.append((s.number, s.encoding, s.text))
                continue
            key = (s.number, s.concat[0])
            groups.setdefault(key, []).append(s)
            if len(groups[key]) == s.concat[1]:
                parts = sorted(groups.pop(key), key=lambda p: p.concat[2])
                out.append((s.number, s.encoding, "".join(p.text for p in parts)))
        return out

    def modem_section(self, **extra: Any) -> dict[str, Any]:
        return {"device": f"{sys.executable} {ATMODEM} {self.dir}", "connection": "proxyat", "model": "at",
                "smsc": SMSC, "send_timeout_s": 5, "reconnect_s": 0.2, "health_every_s": 30, **extra}
