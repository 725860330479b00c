"""Strict line readers for the text CAN logs: Vector ASC, PEAK TRC, candump ``-L`` and python-can CSV.

python-can's readers skip what they cannot parse (a garbage ASC line, a TRC status line, a CSV
header that is really a frame) and believe what they misread (a candump id over 29 bits becomes an
error frame, every CANFD line an FD frame, ASC data bytes short of the DLC a shorter frame). A
stimulus must not change on its way in, so here every line is a frame, a structural line, a known
non-frame record, or an error saying what was expected.

Each reader is a small state machine fed one line at a time (without its line end):
``parse(line)`` returns an event, a string naming a kind of non-frame record (counted and reported
as left out), or None (structure: headers, comments, blank lines), and raises ValueError for a line
it cannot account for; ``end()`` raises ValueError when the file stopped before its format says
it is complete. Channel names follow python-can, so maps written for its readers still hold.
"""

from __future__ import annotations

import base64
import binascii
import decimal
import re

from hil.canframe import FLAG_BRS, FLAG_ERROR, FLAG_ESI, FLAG_EXTENDED, FLAG_FD, FLAG_REMOTE
from hil.stimulus import serialcap
from hil.stimulus.events import CLASSIC_MAX, FD_LENGTHS, CanEvent, Event, log_ns

Parsed = Event | str | None
MS = decimal.Decimal(1_000_000)
DAY = decimal.Decimal(86_400) * 1_000_000_000
TRC_EPOCH_NS = 25_569 * 86_400 * 1_000_000_000  # ;$STARTTIME counts days from 1899-12-30, not 1970-01-01
HEX_DIGITS, DEC_DIGITS = re.compile(r"[0-9A-Fa-f]{1,16}"), re.compile(r"[0-9]{1,20}")


def _hex_bytes(tokens: list[str], n: int) -> bytes:
    """Exactly ``n`` data bytes, two hex digits each."""
    text = " ".join(tokens)
    if len(tokens) == n and all(len(t) == 2 for t in tokens):
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    raise ValueError(f"expected {n} data bytes as two hex digits each, got {text[:80]!r}")


def _number(token: str, base: int, what: str, limit: int) -> int:
    """A plain unsigned integer in ``base`` (no sign, prefix or underscore), at most ``limit``."""
    if not (HEX_DIGITS if base == 16 else DEC_DIGITS).fullmatch(token) or int(token, base) > limit:
        bound = f"hex, ≤ {limit:X}" if base == 16 else f"decimal, ≤ {limit}"
        raise ValueError(f"expected {what} ({bound}), got {token[:40]!r}")
    return int(token, base)


# ---- Vector ASC ----------------------------------------------------------------------------------

ASC_BASE = re.compile(r"base\s+(hex|dec)(?:\s+timestamps\s+(absolute|relative))?", re.IGNORECASE)
ASC_EVENTS = re.compile(r"(?:no\s+)?internal\s+events\s+logged", re.IGNORECASE)
ASC_DIRECTIONS = ("Rx", "Tx", "TxRq")
ASC_FD_EDL, ASC_FD_RTR = 0x1000, 0x0010  # CANFD line message flags: extended data length, remote


class AscReader:
    """Vector ASC: header, one trigger block of events, ``End TriggerBlock`` last."""

    def __init__(self) -> None:
        self.base = 16
        self.state = "header"  # → "block" → "ended"

    def parse(self, line: str) -> Parsed:
        s = line.strip()
        if not s or s.startswith("//"):
            return None
        low = s.lower()
        if self.state == "ended":
            raise ValueError(f"expected nothing after 'End TriggerBlock', got {s[:60]!r}")
        if self.state == "header":
            return self._header(s, low)
        if low.startswith("begin triggerblock"):
            raise ValueError("a second 'Begin Triggerblock': hil reads ASC files of one trigger block (split the file)")
        if low == "end triggerblock":
            self.state = "ended"
            return None
        return self._event(s.split())

    def end(self) -> None:
        if self.state != "ended":
            raise ValueError("expected 'End TriggerBlock' at the end; the file is truncated")

    def _header(self, s: str, low: str) -> Parsed:
        if (m := ASC_BASE.fullmatch(s)) is not None:
            if (m[2] or "").lower() == "relative":
                raise ValueError("ASC with relative timestamps is not supported; log with absolute timestamps")
            self.base = 16 if m[1].lower() == "hex" else 10
            return None
        if low.startswith("date ") or ASC_EVENTS.fullmatch(s):
            return None
        if low.startswith("begin triggerblock"):
            self.state = "block"
            return None
        raise ValueError("expected an ASC header line (date, base, internal events logged, Begin Triggerblock), "
                         f"got {s[:60]!r}")

    def _event(self, tok: list[str]) -> Parsed:
        if len(tok) < 2:
            raise ValueError(f"expected 'TIME CHANNEL …', got {' '.join(tok)[:60]!r}")
        t = log_ns(tok[0])
        head, rest = tok[1], tok[2:]
        if head == "CANFD":
            return self._fd(t, rest)
        if tok[1:] == ["Start", "of", "measurement"]:
            return None
        if head == "CAN" and len(rest) >= 2 and rest[0].isdigit() and rest[1].startswith("Status:"):
            return "ASC chip status lines"
        if head == "SV:":
            return "ASC system variable lines"
        if not head.isdigit() or not rest:
            raise ValueError(f"expected a CAN channel number and an event, got {' '.join(tok[1:])[:60]!r}")
        channel = str(int(head) - 1)  # python-can's numbering
        if rest[0] == "ErrorFrame":
            return CanEvent(t, channel, 0, FLAG_ERROR, b"")
        if rest[0] == "Statistic:":
            return "ASC statistic lines"
        if rest[0] == "J1939TP":
            return "ASC J1939 transport lines (their frames are logged one by one as well)"
        return self._classic(t, channel, rest)

    def _id(self, token: str) -> tuple[int, int]:
        extended = token[-1:] in ("x", "X")
        digits = token[:-1] if extended else token
        return _number(digits, self.base, "a CAN id", 0xFFFFFFFF), FLAG_EXTENDED if extended else 0

    def _data(self, tokens: list[str], n: int) -> bytes:
        if self.base == 16:
            return _hex_bytes(tokens, n)
        if len(tokens) != n:
            raise ValueError(f"expected {n} data bytes, got {' '.join(tokens)[:80]!r}")
        return bytes(_number(t, 10, "a data byte", 255) for t in tokens)

    def _classic(self, t: int, channel: str, rest: list[str]) -> CanEvent:
        if len(rest) < 3 or rest[1] not in ASC_DIRECTIONS or rest[2] not in ("d", "r"):
            raise ValueError(f"expected 'ID Rx|Tx d DLC BYTES…' or 'ID Rx|Tx r [DLC]', got {' '.join(rest)[:60]!r}")
        can_id, flags = self._id(rest[0])
        tail = rest[3:]
        if rest[2] == "r":
            dlc = 0
            if tail and tail[1:2] != ["="]:
                dlc, tail = _number(tail[0], self.base, "a remote frame's DLC", CLASSIC_MAX), tail[1:]
            _asc_attributes(tail)
            return CanEvent(t, channel, can_id, flags | FLAG_REMOTE, bytes(dlc))
        if not tail:
            raise ValueError("expected the DLC after 'd'")
        dlc = _number(tail[0], self.base, "a classic DLC", CLASSIC_MAX)
        data = self._data(tail[1:1 + dlc], dlc)
        _asc_attributes(tail[1 + dlc:])
        return CanEvent(t, channel, can_id, flags, data)

    def _fd(self, t: int, rest: list[str]) -> CanEvent:
        """``CANFD CH DIR ID [NAME] BRS ESI DLC LEN BYTES… DURATION BITS FLAGS CRC T1 T2 T3 T4``."""
        if len(rest) < 3 or not rest[0].isdigit() or rest[1] not in ASC_DIRECTIONS:
            raise ValueError(f"expected 'CANFD CHANNEL Rx|Tx …', got {' '.join(rest)[:60]!r}")
        channel = str(int(rest[0]) - 1)
        if rest[2] == "ErrorFrame":
            return CanEvent(t, channel, 0, FLAG_ERROR, b"")
        can_id, flags = self._id(rest[2])
        fields = rest[3:]
        if fields and not fields[0].isdigit():
            fields = fields[1:]  # the symbolic message name
        if len(fields) < 4 or fields[0] not in ("0", "1") or fields[1] not in ("0", "1"):
            raise ValueError(f"expected 'BRS ESI DLC LENGTH' after the id, got {' '.join(fields[:4])[:60]!r}")
        dlc = _number(fields[2], 16, "a DLC", 15)
        n = _number(fields[3], 10, "a data length", 64)
        tail = fields[4 + n:]
        if len(tail) != 8:
            raise ValueError(f"expected {n} data bytes and 8 fields after them (duration, bit count, flags, CRC, "
                             f"4 bit timings), got {len(fields) - 4} tokens")
        data = self._data(fields[4:4 + n], n)
        line_flags = _number(tail[2], 16, "the message flags", 0xFFFFFFFF)
        if line_flags & ASC_FD_EDL:
            if FD_LENGTHS[dlc] != n:
                raise ValueError(f"DLC {fields[2]} means {FD_LENGTHS[dlc]} bytes, the line says {n}")
            return CanEvent(t, channel, can_id, flags | FLAG_FD | (FLAG_BRS if fields[0] == "1" else 0)
                            | (FLAG_ESI if fields[1] == "1" else 0), data)
        if fields[0] == "1" or fields[1] == "1":
            raise ValueError("BRS/ESI set on a classic frame (the message flags have no EDL bit)")
        if dlc > CLASSIC_MAX:
            raise ValueError(f"expected a classic DLC ≤ 8, got {fields[2]}")
        if line_flags & ASC_FD_RTR:
            if n:
                raise ValueError(f"a remote frame carries no data, the line says {n} bytes")
            return CanEvent(t, channel, can_id, flags | FLAG_REMOTE, bytes(dlc))
        if dlc != n:
            raise ValueError(f"DLC {dlc} but {n} data bytes")
        return CanEvent(t, channel, can_id, flags, data)


def _asc_attributes(tokens: list[str]) -> None:
    """What may follow a frame's data: ``Name = value`` attributes (Length, BitCount, ID)."""
    if len(tokens) % 3 or any(tokens[i + 1] != "=" or not tokens[i].isalnum() for i in range(0, len(tokens), 3)):
        raise ValueError(f"expected 'Name = value' attributes after the data, got {' '.join(tokens)[:60]!r}")


# ---- PEAK TRC ------------------------------------------------------------------------------------

TRC_V1 = {"1.0": ("N", "O", "I", "L", "D"), "1.1": ("N", "O", "T", "I", "L", "D"),
          "1.3": ("N", "O", "B", "T", "I", "R", "L", "D")}
TRC_V1_FRAMES = {"Rx": 0, "Tx": 0}
TRC_V2_FRAMES = {"DT": 0, "RR": FLAG_REMOTE, "FD": FLAG_FD, "FB": FLAG_FD | FLAG_BRS, "FE": FLAG_FD | FLAG_ESI,
                 "BI": FLAG_FD | FLAG_BRS | FLAG_ESI}
TRC_OTHER = {"ST": "TRC status lines", "EC": "TRC error counter lines", "EV": "TRC event lines",
             "Warng": "TRC warning lines", "Error": "TRC error lines"}


class TrcReader:
    """PEAK TRC 1.0, 1.1, 1.3, 2.0 and 2.1: the header names the version and columns; message
    numbers must count up by one (a missing or garbled line shows as a gap)."""

    def __init__(self) -> None:
        self.version = "1.0"
        self.columns: tuple[str, ...] = ()
        self.start_ns = 0
        self.number: int | None = None
        self.in_header = True

    def parse(self, line: str) -> Parsed:
        s = line.strip()
        if not s:
            return None
        if s.startswith(";"):
            if self.in_header:
                self._directive(s)
            return None
        if self.in_header:
            self._columns()
        return self._record(s)

    def end(self) -> None:
        return None

    def _directive(self, s: str) -> None:
        key, _, value = s.partition("=")
        if key == ";$FILEVERSION":
            if value not in ("1.0", "1.1", "1.3", "2.0", "2.1"):
                raise ValueError(f"expected TRC file version 1.0, 1.1, 1.3, 2.0 or 2.1, got {value[:20]!r}")
            self.version = value
        elif key == ";$STARTTIME":
            self.start_ns = log_ns(value, DAY) - TRC_EPOCH_NS
        elif key == ";$COLUMNS":
            self.columns = tuple(value.split(","))

    def _columns(self) -> None:
        self.in_header = False
        if self.version in TRC_V1:
            self.columns = TRC_V1[self.version]
        elif not {"N", "O", "T", "I", "d", "D"} <= set(self.columns) or not {"L", "l"} & set(self.columns) \
                or self.columns[-1] != "D":
            raise ValueError("expected ';$COLUMNS=' with N, O, T, I, d, L or l, and D last in a TRC 2.x header")

    def _record(self, s: str) -> Parsed:
        cols, v1 = self.columns, self.version in TRC_V1
        tok = s.split(None, len(cols) - 1)
        number = tok[0].removesuffix(")") if v1 and tok[0].endswith(")") else "" if v1 else tok[0]
        n = _number(number, 10, "a message number ('N)' in TRC 1.x)" if v1 else "a message number", 1 << 62)
        if self.number is not None and n != self.number + 1:
            raise ValueError(f"expected message number {self.number + 1}, got {n}: a line is missing or garbled")
        self.number = n
        field = dict(zip(cols, tok))
        t = self.start_ns + log_ns(field.get("O", ""), MS)
        kind = field.get("T", "Rx")
        if kind in TRC_OTHER:  # their other columns may be blank
            return TRC_OTHER[kind]
        frames = TRC_V1_FRAMES if v1 else TRC_V2_FRAMES
        if kind not in frames and not (kind == "ER" and not v1):
            raise ValueError(f"expected a TRC {self.version} record type ({', '.join(frames)}), got {kind[:10]!r}")
        if len(tok) < len(cols) - 1:
            raise ValueError(f"expected the columns {','.join(cols)}, got {len(tok)} field(s)")
        channel = str(_number(field["B"], 10, "a bus number", 255)) if "B" in field else "1"
        if kind == "ER":
            return CanEvent(t, channel, 0, FLAG_ERROR, b"")
        if v1 and "T" not in cols and field["I"] == "FFFFFFFF":
            return "TRC bus status lines"
        flags = frames[kind] | (FLAG_EXTENDED if len(field["I"]) > 4 else 0)
        can_id = _number(field["I"], 16, "a CAN id", 0x1FFFFFFF)
        data = field.get("D", "").split()
        if v1 and data == ["RTR"]:
            flags, data = flags | FLAG_REMOTE, []
        if "l" in field:
            length = _number(field["l"], 10, "a data length", 64)
        else:
            dlc = _number(field["L"], 10, "a DLC", 15)
            length = FD_LENGTHS[dlc] if flags & FLAG_FD else dlc
        if flags & FLAG_REMOTE:
            if data:
                raise ValueError(f"a remote frame carries no data, got {' '.join(data)[:40]!r}")
            return CanEvent(t, channel, can_id, flags, bytes(length))
        return CanEvent(t, channel, can_id, flags, _hex_bytes(data, length))


# ---- candump -L ----------------------------------------------------------------------------------

# (TIME) IFACE ID#DATA | ID#R[DLC] | ID##FLAGS DATA, with an optional R/T direction
CANDUMP = re.compile(r"\((\d+\.\d+)\)\s+(\S+)\s+([0-9A-Fa-f]{3}|[0-9A-Fa-f]{8})"
                     r"#(?:R([0-8])?|#([0-9A-Fa-f])((?:[0-9A-Fa-f]{2})*)|((?:[0-9A-Fa-f]{2})*))(?:\s+[RT])?")
CAN_ERR_FLAG, CAN_ERR_DLC = 0x20000000, 8
CANFD_FLAGS = 0x07  # BRS, ESI, FDF


class CandumpReader:
    """``candump -L`` lines: 3 hex digits a standard id, 8 an extended one (or an error frame:
    the 0x20000000 flag and 8 data bytes, or none); whole bytes only."""

    def parse(self, line: str) -> Parsed:
        s = line.strip()
        if not s:
            return None
        m = CANDUMP.fullmatch(s)
        if m is None:
            raise ValueError("expected a candump frame such as '(1700000000.000000) can0 123#11223344', "
                             f"got {s[:80]!r}")
        t, channel, ident, remote_dlc, fd_flags, fd_data, data = m.groups()
        can_id = int(ident, 16)
        flags = FLAG_EXTENDED if len(ident) == 8 else 0
        if can_id > 0x3FFFFFFF:
            raise ValueError(f"id {ident} is over 29 bits (bits 30/31 are not part of a candump id)")
        if can_id & CAN_ERR_FLAG:  # the kernel's error frames carry 8 bytes, python-can's writer none
            if data is None or len(data) not in (0, 2 * CAN_ERR_DLC):
                raise ValueError(f"id {ident} carries the error flag 0x20000000, but an error frame has "
                                 f"{CAN_ERR_DLC} data bytes ('{ident}#' + 16 hex digits) or none")
            return CanEvent(log_ns(t), channel, can_id & ~CAN_ERR_FLAG, FLAG_ERROR, bytes.fromhex(data))
        if fd_flags is not None:
            nibble = int(fd_flags, 16)
            if nibble & ~CANFD_FLAGS:
                raise ValueError(f"expected CAN FD flags 0-7 (BRS 1, ESI 2, FDF 4), got {fd_flags}")
            return CanEvent(log_ns(t), channel, can_id, flags | FLAG_FD | (FLAG_BRS if nibble & 1 else 0)
                            | (FLAG_ESI if nibble & 2 else 0), bytes.fromhex(fd_data))
        if data is None:
            return CanEvent(log_ns(t), channel, can_id, flags | FLAG_REMOTE, bytes(int(remote_dlc or 0)))
        return CanEvent(log_ns(t), channel, can_id, flags, bytes.fromhex(data))

    def end(self) -> None:
        return None


# ---- python-can CSV ------------------------------------------------------------------------------

CSV_HEADER = "timestamp,arbitration_id,extended,remote,error,dlc,data"
CSV_ID = re.compile(r"0x[0-9A-Fa-f]{1,8}")


class CsvReader:
    """python-can's CSV: its header line, then ``timestamp,0xID,ext,rtr,err,dlc,base64``."""

    def __init__(self) -> None:
        self.seen_header = False

    def parse(self, line: str) -> Parsed:
        if not self.seen_header:
            if line != CSV_HEADER:
                raise ValueError(f"expected the header {CSV_HEADER!r}, got {line[:80]!r}")
            self.seen_header = True
            return None
        if not line.strip():
            return None
        fields = line.split(",")
        if len(fields) != 7:
            raise ValueError(f"expected 7 comma-separated fields ({CSV_HEADER}), got {len(fields)}")
        ts, ident, ext, rtr, err, dlc_text, b64 = fields
        if not CSV_ID.fullmatch(ident):
            raise ValueError(f"expected an id such as 0x1a4, got {ident[:20]!r}")
        bits = [ext, rtr, err]
        if any(b not in ("0", "1") for b in bits):
            raise ValueError(f"expected 0 or 1 for extended, remote and error, got {','.join(bits)[:20]!r}")
        dlc = _number(dlc_text, 10, "a DLC", 64)
        try:
            data = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"expected the data as base64, got {b64[:40]!r}") from None
        flags = ((FLAG_EXTENDED if ext == "1" else 0) | (FLAG_REMOTE if rtr == "1" else 0)
                 | (FLAG_ERROR if err == "1" else 0))
        if flags & FLAG_REMOTE:
            if data:
                raise ValueError("a remote frame carries no data")
            data = bytes(dlc)
        elif dlc != len(data):
            raise ValueError(f"dlc {dlc} but {len(data)} data bytes")
        return CanEvent(log_ns(ts), "", int(ident, 16), flags, data)

    def end(self) -> None:
        if not self.seen_header:
            raise ValueError(f"expected the header {CSV_HEADER!r}; the file is empty")


# ---- hil serial capture --------------------------------------------------------------------------

class SerialReader:
    """hil serial captures (:mod:`hil.stimulus.serialcap`)."""

    def parse(self, line: str) -> Parsed:
        if not line.strip() or line.lstrip().startswith("#"):
            return None
        return serialcap.parse_line(line)

    def end(self) -> None:
        return None


READERS = {"asc": AscReader, "trc": TrcReader, "log": CandumpReader, "csv": CsvReader, "serial": SerialReader}
