"""The wire-time model: how long a CAN / CAN FD frame occupies the bus, bit stuffing included.

The frame is laid out bit by bit as ISO 11898-1 does (SOF, arbitration, control, data, CRC,
delimiters, ACK, EOF, 3-bit intermission). Classic frames are dynamically stuffed from SOF to the
end of the CRC, so the real CRC-15 is computed. CAN FD frames are dynamically stuffed up to the end
of the data field; the CRC field (stuff count + CRC-17/21) has fixed stuff bits, so its length does
not depend on its value. With BRS, the bits from ESI to the CRC delimiter run at the data bitrate.

:func:`frame_timing` returns the duration including intermission and the offset of the
end-of-frame (the last EOF bit, where a controller stamps a received frame).
"""

from __future__ import annotations

from functools import lru_cache

from hil.canframe import FD_LENGTHS
from hil.simbus.protocol import F_BRS, F_ERROR, F_EXTENDED, F_FD, F_REMOTE

IFS_BITS = 3
TRAILER_BITS = 1 + 1 + 7  # ACK slot, ACK delimiter, EOF (after the CRC delimiter)
ERROR_FRAME_BITS = 6 + 8  # error flag + error delimiter


def fd_dlc(length: int) -> int:
    """CAN FD DLC code (0..15) of a payload length; lengths between steps round up (the controller
    pads the payload)."""
    for code, n in enumerate(FD_LENGTHS):
        if length <= n:
            return code
    raise ValueError(f"expected a CAN FD payload of at most 64 bytes, got {length}")


def _crc15_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 7
        for _ in range(8):
            crc = ((crc << 1) ^ 0x4599) if crc & 0x4000 else crc << 1
        table.append(crc & 0x7FFF)
    return table


_CRC15_TABLE = _crc15_table()


def crc15(value: int, nbits: int) -> int:
    """CRC-15/CAN of the ``nbits`` bits of ``value`` (most significant first). The initial value
    is 0, so zero bits in front change nothing: the bits are run through a byte table as whole
    bytes, left-padded."""
    crc, table = 0, _CRC15_TABLE
    for byte in value.to_bytes((nbits + 7) // 8, "big"):
        crc = ((crc << 8) & 0x7FFF) ^ table[((crc >> 7) ^ byte) & 0xFF]
    return crc


_START = 10  # stuffing state before SOF; otherwise state = bit value * 5 + run length (1..4)


def _stuff_step(state: int, bit: int) -> tuple[int, int]:
    """One bit through the stuffing state machine: (next state, stuff bits inserted)."""
    if state == _START:
        return bit * 5 + 1, 0
    value, run = divmod(state, 5)
    if bit != value:
        return bit * 5 + 1, 0
    if run == 4:  # the fifth equal bit: a stuff bit of the other value follows and starts a new run
        return (1 - value) * 5 + 1, 1
    return state + 1, 0


def _stuff_run(state: int, bits) -> tuple[int, int]:
    count = 0
    for bit in bits:
        state, inserted = _stuff_step(state, bit)
        count += inserted
    return state, count


def _bits(value: int, n: int) -> list[int]:
    return [(value >> i) & 1 for i in range(n - 1, -1, -1)]


@lru_cache(maxsize=1)
def _stuff_tables() -> tuple[list[list[tuple[int, int]]], list[tuple[int, int]]]:
    """(for n = 0..7: the first n bits from SOF as a number → (state, stuff bits)),
    (state * 256 + byte → (state, stuff bits))."""
    head = [[_stuff_run(_START, _bits(v, n)) for v in range(1 << n)] for n in range(8)]
    table = [_stuff_run(s, _bits(b, 8)) for s in range(_START + 1) for b in range(256)]
    return head, table


def stuff_bits(value: int, nbits: int) -> int:
    """How many stuff bits a transmitter inserts into the ``nbits`` bits of ``value`` (one of the
    opposite value after every 5 equal bits; the stuff bit itself counts towards the next run),
    starting at SOF.

    The state machine runs a byte at a time through a table built on first use: a handful of
    lookups per frame instead of a Python step per bit.
    """
    head, table = _stuff_tables()
    n = nbits % 8
    rest = nbits - n
    state, total = head[n][value >> rest]
    if rest:
        for byte in (value & ((1 << rest) - 1)).to_bytes(rest // 8, "big"):
            state, inserted = table[state * 256 + byte]
            total += inserted
    return total


@lru_cache(maxsize=4096)
def _header(can_id: int, flags: int, dlc: int) -> tuple[int, int, int, int]:
    """The arbitration-phase bits from SOF and the control bits after it up to the DLC code,
    unstuffed: (arbitration bits, their count, control bits, their count)."""
    rtr = "1" if flags & F_REMOTE else "0"
    if flags & F_FD:
        # FD: RRS=0, then FDF=1, res=0, BRS; the data phase starts at ESI
        tail = "0" + "10" + ("1" if flags & F_BRS else "0")
        ctrl = "0" + format(dlc, "04b")  # ESI (error active) + DLC
    else:
        tail, ctrl = rtr, "0" + format(dlc, "04b")  # (RTR | r1) ... r0 + DLC
    if flags & F_EXTENDED:
        arb = "0" + format(can_id >> 18, "011b") + "11" + format(can_id & 0x3FFFF, "018b")
        arb += rtr + "0" if not flags & F_FD else tail  # classic: RTR, r1; then r0 + DLC
    else:
        arb = "0" + format(can_id, "011b")
        # FD: RRS, IDE=0, FDF, res, BRS; classic: RTR, IDE=0; then r0 + DLC
        arb += tail[:1] + "0" + tail[1:] if flags & F_FD else tail + "0"
    return int(arb, 2), len(arb), int(ctrl, 2), len(ctrl)


@lru_cache(maxsize=8192)
def frame_bits(can_id: int, flags: int, dlc: int, data: bytes) -> tuple[int, int]:
    """(bits at the nominal bitrate, bits at the data bitrate), intermission included."""
    if flags & F_ERROR:
        return ERROR_FRAME_BITS + IFS_BITS, 0
    if flags & F_FD:  # the DLC field holds a code; controllers pad the payload to its length
        code = fd_dlc(len(data))
        data = data.ljust(FD_LENGTHS[code], b"\0")
    else:
        code = min(dlc, 15)
    arb, n_arb, ctrl, n_ctrl = _header(can_id, flags, code)
    n_payload = 0 if flags & F_REMOTE else 8 * len(data)
    n_body = n_arb + n_ctrl + n_payload
    body = (((arb << n_ctrl) | ctrl) << n_payload) | (int.from_bytes(data, "big") if n_payload else 0)
    if not flags & F_FD:
        with_crc = (body << 15) | crc15(body, n_body)
        return n_body + 15 + stuff_bits(with_crc, n_body + 15) + 1 + TRAILER_BITS + IFS_BITS, 0
    # the run across the arbitration/data boundary may put one stuff bit on the wrong side
    stuffed_arb = stuff_bits(arb, n_arb)
    stuffed_data = stuff_bits(body, n_body) - stuffed_arb
    crc_len = 17 if len(data) <= 16 else 21
    crc_field = 4 + crc_len + (4 + crc_len + 3) // 4  # stuff count + CRC + fixed stuff bits
    fast = n_ctrl + n_payload + stuffed_data + crc_field + 1  # through the CRC delimiter
    slow = n_arb + stuffed_arb + TRAILER_BITS + IFS_BITS
    if flags & F_BRS:
        return slow, fast
    return slow + fast, 0


class WireModel:
    """Frame durations on one bus: nominal and data bitrate, or no wire time at all."""

    def __init__(self, bitrate: int, data_bitrate: int | None = None, enabled: bool = True):
        _stuff_tables()  # built now, not in the middle of the first frame
        self.enabled = enabled
        self.bit_ns = 1e9 / bitrate
        self.data_bit_ns = 1e9 / (data_bitrate or bitrate)
        self.ifs_ns = round(IFS_BITS * self.bit_ns)

    def timing(self, can_id: int, flags: int, dlc: int, data: bytes) -> tuple[int, int]:
        """(duration including intermission, end-of-frame offset from the start), in ns; zero when
        the model is off (frames are delivered as fast as possible)."""
        if not self.enabled:
            return 0, 0
        duration = self.wire_duration(can_id, flags, dlc, data)
        return duration, duration - self.ifs_ns

    def wire_duration(self, can_id: int, flags: int, dlc: int, data: bytes) -> int:
        """The modelled duration including intermission, whether or not the model is enabled."""
        slow, fast = frame_bits(can_id, flags, dlc, data)
        return round(slow * self.bit_ns + fast * self.data_bit_ns)


def arbitration_key(can_id: int, flags: int) -> int:
    """Lower wins: base id, then a standard frame beats an extended one (SRR/IDE recessive), then
    the extended id, then a data frame beats a remote frame; error frames win outright."""
    if flags & F_ERROR:
        return -1
    rtr = 1 if flags & F_REMOTE and not flags & F_FD else 0
    if flags & F_EXTENDED:
        return ((can_id >> 18) << 21) | (1 << 20) | ((can_id & 0x3FFFF) << 1) | rtr
    return (can_id << 21) | rtr
