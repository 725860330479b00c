"""RTP/JPEG (RFC 2435): baseline JPEG frames as RTP packets any stock receiver decodes, and back.

A frame is split into its main header fields (type, Q, width/8, height/8) and its entropy-coded
scan data; the quantization tables travel in-band in the first packet of every frame (Q = 255), the
Huffman tables are the standard ones of JPEG Annex K, which the receiver regenerates. So only
baseline, 8-bit, three-component JPEGs with 4:2:2 or 4:2:0 sampling, standard Huffman tables and no
restart interval can be sent — what Pillow writes by default; anything else is refused with a
:class:`JpegError` saying what was found.

Each packet carries the frame's capture time in the RTP timestamp (90 kHz, the low 32 bits of the
capture time in Unix ns × 9 / 100,000) and the frame's index in an RFC 8285 one-byte header
extension (id 1, 24 bits), so a probe can pair on either; receivers that do not know the extension
skip it, as RFC 3550 requires.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

PAYLOAD_TYPE = 26  # RFC 3551: JPEG, 90 kHz
CLOCK_HZ = 90_000
INDEX_EXTENSION_ID = 1
DEFAULT_MTU = 1400  # RTP packet size (header included), below any Ethernet path's MTU
_RTP = struct.Struct("!BBHII")
_JPEG = struct.Struct("!I4B")  # type-specific (8) + fragment offset (24), type, Q, width/8, height/8
_QHEADER = struct.Struct("!BBH")  # MBZ, precision, length
_EXTENSION = b"\xbe\xde\x00\x01"  # RFC 8285 one-byte profile, one 32-bit word of elements
Q_INBAND = 255
SAMPLING_TYPES = {(2, 1): 0, (2, 2): 1}  # luma (H, V) → RFC 2435 type: 4:2:2, 4:2:0
MAX_SIDE = 255 * 8

# The four DHT tables of JPEG Annex K (K.3) as they appear in a DHT segment: class/id, 16 counts, values.
STANDARD_DHT = bytes.fromhex(
    "000001050101010101010000000000000000"
    "0102030405060708090a0b"
    "100002010303020403050504040000017d"
    "01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a2526"
    "2728292a3435363738393a434445464748494a535455565758595a636465666768696a737475767778797a838485"
    "868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6"
    "d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9fa"
    "010003010101010101010101000000000000"
    "0102030405060708090a0b"
    "1100020102040403040705040400010277"
    "000102031104052131061241510761711322328108144291a1b1c109233352f0156272d10a162434e125f1171819"
    "1a262728292a35363738393a434445464748494a535455565758595a636465666768696a737475767778797a8283"
    "8485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4"
    "d5d6d7d8d9dae2e3e4e5e6e7e8e9eaf2f3f4f5f6f7f8f9fa")


class JpegError(ValueError):
    """A JPEG that RFC 2435 cannot carry (or that is not a JPEG): the message says what was found."""


@dataclass(frozen=True)
class JpegParts:
    """What RFC 2435 sends of a JPEG: the main header fields, the two 8-bit quantization tables
    (luma, chroma; zig-zag order as in DQT) and the scan data."""

    type: int
    width: int
    height: int
    qtables: bytes
    scan: bytes


def split_jpeg(jpeg: bytes) -> JpegParts:
    """Parse a baseline JPEG into :class:`JpegParts`; :class:`JpegError` for anything RFC 2435
    (with in-band tables and standard Huffman tables) cannot carry."""
    if jpeg[:2] != b"\xff\xd8":
        raise JpegError("not a JPEG: no start-of-image marker")
    tables: dict[int, bytes] = {}
    huffman: dict[int, bytes] = {}
    sof = None
    pos = 2
    while True:
        if pos + 4 > len(jpeg) or jpeg[pos] != 0xFF:
            raise JpegError(f"not a JPEG: no marker at byte {pos}")
        marker = jpeg[pos + 1]
        length = int.from_bytes(jpeg[pos + 2:pos + 4], "big")
        body = jpeg[pos + 4:pos + 2 + length]
        if len(body) != length - 2:
            raise JpegError(f"truncated JPEG: segment 0xFF{marker:02X} at byte {pos}")
        if marker == 0xDB:
            _read_dqt(body, tables)
        elif marker == 0xC4:
            _read_dht(body, huffman)
        elif marker == 0xC0:
            sof = body
        elif marker in (0xC1, 0xC2, 0xC3) or 0xC5 <= marker <= 0xCF and marker not in (0xC8, 0xCC):
            raise JpegError(f"not a baseline JPEG (SOF{marker - 0xC0}): RFC 2435 carries baseline only")
        elif marker == 0xDD and int.from_bytes(body[:2], "big"):
            raise JpegError("JPEG has a restart interval: not supported, write it without restart markers")
        elif marker == 0xDA:
            return _parts(sof, tables, huffman, body, jpeg, pos + 2 + length)
        pos += 2 + length


def _read_dqt(body: bytes, tables: dict[int, bytes]) -> None:
    at = 0
    while at < len(body):
        precision, ident = body[at] >> 4, body[at] & 15
        if precision:
            raise JpegError("JPEG has 16-bit quantization tables: RFC 2435 carries 8-bit tables only")
        tables[ident] = body[at + 1:at + 65]
        at += 65


def _read_dht(body: bytes, tables: dict[int, bytes]) -> None:
    """The Huffman tables of a DHT segment, by class/id byte (each: 16 counts, then the values)."""
    at = 0
    while at + 17 <= len(body):
        end = at + 17 + sum(body[at + 1:at + 17])
        tables[body[at]] = body[at:end]
        at = end


STANDARD_TABLES: dict[int, bytes] = {}
_read_dht(STANDARD_DHT, STANDARD_TABLES)


def _parts(sof: bytes | None, tables: dict[int, bytes], huffman: dict[int, bytes], sos: bytes, jpeg: bytes,
           scan_at: int) -> JpegParts:
    if sof is None:
        raise JpegError("JPEG has no baseline frame header (SOF0)")
    precision, height, width, ncomp = struct.unpack_from("!BHHB", sof)
    if precision != 8 or ncomp != 3:
        raise JpegError(f"JPEG has {ncomp} component(s) of {precision} bits: RFC 2435 carries 3 of 8 bits (YCbCr)")
    comps = [sof[6 + 3 * i:9 + 3 * i] for i in range(3)]
    luma = (comps[0][1] >> 4, comps[0][1] & 15)
    if luma not in SAMPLING_TYPES or any(c[1] != 0x11 for c in comps[1:]):
        raise JpegError(f"JPEG sampling {luma} for luma: RFC 2435 carries 4:2:2 (2, 1) and 4:2:0 (2, 2)")
    if [c[2] for c in comps] != [0, 1, 1] or not {0, 1} <= tables.keys():
        raise JpegError("JPEG quantization tables are not table 0 for luma and table 1 for chroma")
    if width % 8 or height % 8 or not 0 < width <= MAX_SIDE or not 0 < height <= MAX_SIDE:
        raise JpegError(f"JPEG of {width}×{height}: RFC 2435 carries sides that are multiples of 8 up to {MAX_SIDE}")
    if huffman != STANDARD_TABLES:
        raise JpegError("JPEG has its own Huffman tables (optimized?): RFC 2435 carries the standard tables only")
    if sos[0] != 3 or sos[1:7:2] != sof[6:15:3] or sos[2:7:2] != b"\x00\x11\x11" or sos[7:10] != b"\x00\x3f\x00":
        raise JpegError("JPEG scan is not one sequential scan of Y, Cb, Cr with standard table selectors")
    end = jpeg.find(b"\xff\xd9", scan_at)
    if end < 0:
        raise JpegError("truncated JPEG: no end-of-image marker")
    return JpegParts(SAMPLING_TYPES[luma], width, height, tables[0] + tables[1], jpeg[scan_at:end])


def join_jpeg(parts: JpegParts) -> bytes:
    """A complete JFIF-less JPEG from :class:`JpegParts`, as an RFC 2435 receiver rebuilds it."""
    h = 2 if parts.type == 1 else 1

    def segment(marker: int, body: bytes) -> bytes:
        return bytes((0xFF, marker)) + (len(body) + 2).to_bytes(2, "big") + body

    sof = struct.pack("!BHHB", 8, parts.height, parts.width, 3) + bytes((1, 0x20 | h, 0, 2, 0x11, 1, 3, 0x11, 1))
    return (b"\xff\xd8" + segment(0xDB, b"\x00" + parts.qtables[:64] + b"\x01" + parts.qtables[64:])
            + segment(0xC0, sof) + segment(0xC4, STANDARD_DHT)
            + segment(0xDA, b"\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00") + parts.scan + b"\xff\xd9")


def rtp_timestamp(capture_ns: int) -> int:
    """The 90 kHz RTP timestamp of a capture time (ns), wrapped to 32 bits."""
    return capture_ns * 9 // 100_000 & 0xFFFFFFFF


class RtpJpegSender:
    """Packetizes frames of one RTP stream (one SSRC), keeping its sequence numbers across frames."""

    def __init__(self, ssrc: int, mtu: int = DEFAULT_MTU, first_sequence: int = 0):
        if mtu < 200:
            raise ValueError(f"mtu {mtu}: at least 200 bytes (RTP, JPEG and table headers)")
        self.ssrc, self.mtu, self.sequence = ssrc, mtu, first_sequence & 0xFFFF

    def packets(self, jpeg: bytes, capture_ns: int, index: int) -> list[bytes]:
        """The RTP packets of one frame, in order; the last one has the marker bit."""
        parts = split_jpeg(jpeg)
        qheader = _QHEADER.pack(0, 0, len(parts.qtables)) + parts.qtables
        ext = _EXTENSION + bytes((INDEX_EXTENSION_ID << 4 | 2,)) + (index & 0xFFFFFF).to_bytes(3, "big")
        timestamp = rtp_timestamp(capture_ns)
        out: list[bytes] = []
        offset = 0
        while offset < len(parts.scan) or not out:
            tables = qheader if offset == 0 else b""
            room = self.mtu - _RTP.size - len(ext) - _JPEG.size - len(tables)
            chunk = parts.scan[offset:offset + room]
            last = offset + len(chunk) >= len(parts.scan)
            rtp = _RTP.pack(0x90, PAYLOAD_TYPE | (0x80 if last else 0), self.sequence, timestamp, self.ssrc)
            jpeg_header = _JPEG.pack(offset, parts.type, Q_INBAND, parts.width // 8, parts.height // 8)
            out.append(rtp + ext + jpeg_header + tables + chunk)
            self.sequence = (self.sequence + 1) & 0xFFFF
            offset += len(chunk)
        return out


@dataclass(frozen=True)
class RtpPacket:
    """The fields of one RTP/JPEG packet a receiver or a probe reads."""

    sequence: int
    timestamp: int
    marker: bool
    index: int | None  # the frame index extension, if present
    fragment_offset: int
    parts: JpegParts  # scan holds this packet's fragment; qtables only in the first packet


def parse_packet(packet: bytes) -> RtpPacket:
    """One RTP/JPEG packet's fields; ValueError for a packet that is not RTP/JPEG of this kind."""
    if len(packet) < _RTP.size + _JPEG.size:
        raise ValueError(f"RTP/JPEG packet of {len(packet)} bytes: too short")
    flags, mpt, sequence, timestamp, _ssrc = _RTP.unpack_from(packet)
    if flags >> 6 != 2 or mpt & 0x7F != PAYLOAD_TYPE:
        raise ValueError(f"not an RTP/JPEG packet (version {flags >> 6}, payload type {mpt & 0x7F})")
    at = _RTP.size + 4 * (flags & 15)
    index = None
    if flags & 0x10:
        words = int.from_bytes(packet[at + 2:at + 4], "big")
        if packet[at:at + 2] == _EXTENSION[:2] and packet[at + 4] == INDEX_EXTENSION_ID << 4 | 2:
            index = int.from_bytes(packet[at + 5:at + 8], "big")
        at += 4 + 4 * words
    word, kind, q, w8, h8 = _JPEG.unpack_from(packet, at)
    at += _JPEG.size
    if kind > 63:
        raise ValueError(f"RTP/JPEG type {kind}: restart markers not supported")
    qtables = b""
    if q >= 128 and word & 0xFFFFFF == 0:
        _mbz, _precision, length = _QHEADER.unpack_from(packet, at)
        qtables = packet[at + 4:at + 4 + length]
        at += 4 + length
    parts = JpegParts(kind, w8 * 8, h8 * 8, qtables, packet[at:])
    return RtpPacket(sequence, timestamp, bool(mpt & 0x80), index, word & 0xFFFFFF, parts)


@dataclass(frozen=True)
class ReceivedFrame:
    """A frame rebuilt from its packets: its RTP timestamp, index (extension) and JPEG."""

    timestamp: int
    index: int | None
    jpeg: bytes


def depacketize(packets: Iterator[bytes] | list[bytes]) -> Iterator[ReceivedFrame]:
    """Rebuild frames from RTP/JPEG packets in arrival order, as a receiver does: a frame is
    complete at its marker packet when its fragments cover the scan without gaps; frames with a
    lost packet are dropped, and datagrams that are not RTP/JPEG are skipped."""
    pending: list[RtpPacket] = []
    for raw in packets:
        try:
            pkt = parse_packet(raw)
        except (ValueError, struct.error):
            continue
        if pending and pkt.timestamp != pending[0].timestamp:
            pending = []
        pending.append(pkt)
        if not pkt.marker:
            continue
        frags = sorted(pending, key=lambda p: p.fragment_offset)
        pending = []
        scan, first = b"", frags[0].parts
        for p in frags:
            if p.fragment_offset != len(scan):
                break
            scan += p.parts.scan
        else:
            if len(first.qtables) == 128:
                full = JpegParts(first.type, first.width, first.height, first.qtables, scan)
                yield ReceivedFrame(pkt.timestamp, pkt.index, join_jpeg(full))
