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


# --- building what a phone sends: SMS-DELIVER PDUs for the emulator's memory ----------------------

def _address(number: str) -> str:
    digits = number.lstrip("+")
    toa = "91" if number.startswith("+") else "81"
    padded = digits + ("F" if len(digits) % 2 else "")
    swapped = "".join(padded[i + 1] + padded[i] for i in range(0, len(padded), 2))
    return f"{len(digits):02X}{toa}{swapped}"


def _pack7(septets: list[int], fill_bits: int = 0) -> bytes:
    bits, nbits = 0, fill_bits
    for s in septets:
        bits |= s << nbits
        nbits += 7
    return bits.to_bytes((nbits + 7) // 8, "little")


def _gsm7_septets(text: str) -> list[int]:
    out: list[int] = []
    ext = {v: k for k, v in GSM7_EXT.items()}
    for ch in text:
        if ch in ext:
            out += [0x1B, ext[ch]]
        else:
            out.append(GSM7_BASIC.index(ch))  # ValueError: not in the GSM alphabet
    return out


def deliver_pdus(sender: str, text: str, *, ucs2: bool = False, concat_ref: int = 0x42,
                 part_chars: int | None = None) -> list[str]:
    """The SMS-DELIVER PDUs (hex, with an empty SMSC field) a phone's message arrives as: one, or
    several with a concatenation UDH (8-bit reference) when the text does not fit one part."""
    limit = part_chars or (70 if ucs2 else 160)
    split = part_chars or (67 if ucs2 else 153)
    chunks = [text] if len(text) <= limit else [text[i:i + split] for i in range(0, len(text), split)]
    scts = "52110291000000"  # 2025-11-20 19:00:00 +0, semi-octets
    out = []
    for seq, chunk in enumerate(chunks, 1):
        udh = b"" if len(chunks) == 1 else bytes([5, 0x00, 3, concat_ref & 0xFF, len(chunks), seq])
        first = 0x04 | (0x40 if udh else 0)  # SMS-DELIVER, no more messages, UDHI
        if ucs2:
            body = udh + chunk.encode("utf-16-be")
            udl, dcs = len(body), 0x08
        else:
            septets = _gsm7_septets(chunk)
            fill = (7 - (len(udh) * 8) % 7) % 7
            body = udh + _pack7(septets, fill)  # septets start after the UDH and its fill bits
            udl, dcs = (len(udh) * 8 + fill) // 7 + len(septets), 0x00
        out.append("00" + f"{first:02X}" + _address(sender) + "00" + f"{dcs:02X}" + scts
                   + f"{udl:02X}" + body.hex().upper())
    return out
