"""Decode the SMS-SUBMIT PDUs a modem is given (3GPP TS 23.040), independently of Gammu, so tests
check the exact text and encoding a phone would receive."""
from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXT = {0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[", 0x3D: "~", 0x3E: "]",
            0x40: "|", 0x65: "€"}


@dataclass
class Submit:
    smsc: str
    number: str
    encoding: str  # gsm7, ucs2, 8bit
    text: str
    status_report_requested: bool
    concat: tuple[int, int, int] | None  # (reference, total, sequence)


def _semi_octets(hexdigits: str, ndigits: int) -> str:
    out = "".join(hexdigits[i + 1] + hexdigits[i] for i in range(0, len(hexdigits), 2))
    return out[:ndigits].rstrip("F")


def _unpack7(data: bytes, nseptets: int, skip_bits: int = 0) -> list[int]:
    bits = int.from_bytes(data, "little")
    return [(bits >> (skip_bits + 7 * i)) & 0x7F for i in range(nseptets)]


def _gsm7_text(septets: list[int]) -> str:
    out, escape = [], False
    for s in septets:
        if escape:
            out.append(GSM7_EXT.get(s, "?"))
            escape = False
        elif s == 0x1B:
            escape = True
        else:
            out.append(GSM7_BASIC[s])
    return "".join(out)


def decode_submit(pdu_hex: str) -> Submit:
    raw = bytes.fromhex(pdu_hex)
    smsc_len = raw[0]
    smsc = ""
    if smsc_len:
        smsc = ("+" if raw[1] == 0x91 else "") + _semi_octets(raw[2:1 + smsc_len].hex().upper(), 2 * (smsc_len - 1))
    p = 1 + smsc_len
    first = raw[p]
    if first & 0x03 != 0x01:
        raise ValueError(f"not an SMS-SUBMIT (first octet {first:02X})")
    vpf, srr, udhi = (first >> 3) & 0x03, bool(first & 0x20), bool(first & 0x40)
    p += 2  # first octet, TP-MR
    ndigits, toa = raw[p], raw[p + 1]
    alen = (ndigits + 1) // 2
    number = ("+" if toa == 0x91 else "") + _semi_octets(raw[p + 2:p + 2 + alen].hex().upper(), ndigits)
    p += 2 + alen
    dcs = raw[p + 1]
    p += 2  # PID, DCS
    p += {0: 0, 1: 7, 2: 1, 3: 7}[vpf]
    udl = raw[p]
    ud = raw[p + 1:]
    coding = (dcs >> 2) & 0x03 if dcs < 0x40 else 0
    encoding = {0: "gsm7", 1: "8bit", 2: "ucs2"}.get(coding, "gsm7")
    concat, udh_len = None, 0
    if udhi:
        udh_len = ud[0] + 1
        i = 1
        while i < udh_len:
            iei, ielen = ud[i], ud[i + 1]
            val = ud[i + 2:i + 2 + ielen]
            if iei == 0x00:
                concat = (val[0], val[1], val[2])
            elif iei == 0x08:
                concat = ((val[0] << 8) | val[1], val[2], val[3])
            i += 2 + ielen
    if encoding == "gsm7":
        skip = udh_len * 8
        fill = (7 - skip % 7) % 7
        header_septets = (skip + fill) // 7
        text = _gsm7_text(_unpack7(ud, udl, 0)[header_septets:]) if udh_len else _gsm7_text(_unpack7(ud, udl))
    elif encoding == "ucs2":
        text = ud[udh_len:udl].decode("utf-16-be")
    else:
        text = ud[udh_len:udl].hex()
    return Submit(smsc, number, encoding, text, srr, concat)


def submit_destination_field(pdu_hex: str) -> str:
    """The TP-DA field (length, type, digits) of a submit, as hex, for building a status report."""
    raw = bytes.fromhex(pdu_hex)
    p = 1 + raw[0] + 2
    alen = (raw[p] + 1) // 2
    return raw[p:p + 2 + alen].hex().upper()
