"""The project's corpus of corrupt and hostile stimulus files (issue #12): every frame of a file is
in the stimulus, or reading stops with the file, the record and what was expected — never a
silent loss, a hang, or unbounded memory. Each case is generated here from a good file written by
python-can (or by hand) and one deliberate defect; each expects its exact error.

Before these readers, every case below was read without an error (frames dropped or changed, an
error naming no file, an internal error), or could not be read at all (.gz); the cases marked
"guard" were already refused (often as "unreadable", naming no record) and stay here so they stay
refused.
"""

from __future__ import annotations

import gzip
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import can
import pytest

from hil.errors import StimulusError
from hil.stimulus import readers
from hil.stimulus.readers import read_source

ASC_HEAD = ("date Mon Dec 1 10:00:00.000 am 2025\nbase hex  timestamps absolute\ninternal events logged\n"
            "Begin Triggerblock Mon Dec 1 10:00:00.000 am 2025\n   0.000000 Start of measurement\n")
ASC_END = "End TriggerBlock\n"


def asc(lines: list[str]) -> str:
    return ASC_HEAD + "".join(f"{line}\n" for line in lines) + ASC_END


def asc_frames(n: int = 20) -> list[str]:
    return [f"   {i * 0.01:.6f} 1  {0x100 + i % 4:X}             Rx   d 2 {i:02X} AA  Length = 228000 BitCount = 117"
            for i in range(n)]


def refused(path: Path, pattern: str, **kw) -> str:
    """Reading ``path`` fails with ``PATH: `` + a message matching ``pattern``; returns it."""
    with pytest.raises(StimulusError) as err:
        read_source(path, **kw)
    message = str(err.value)
    assert re.fullmatch(re.escape(f"{path}: ") + pattern, message), message
    return message


# ---- text logs: every line a frame, a known non-frame line, or an error ---------------------------

ASC_CASES = [  # (what was done to frame line 7 of 20, the error)
    ("garbage", lambda line: "x7#%$ garbage",
     r"line 12: expected a time, got 'x7#%\$'"),
    ("guard: overwritten with letters", lambda line: "   0.060000 1  QQQQ Rx d 2 00 AA",
     r"line 12: expected a CAN id \(hex, ≤ FFFFFFFF\), got 'QQQQ'"),
    ("guard: data bytes short of the DLC", lambda line: line.replace("d 2 06 AA", "d 4 06 AA"),
     r"line 12: expected 4 data bytes as two hex digits each, got '06 AA Length ='"),
    ("a data byte beyond the DLC", lambda line: line.replace("d 2 06 AA", "d 2 06 AA 55"),
     r"line 12: expected 'Name = value' attributes after the data, got '55 Length = 228000 BitCount = 117'"),
    ("guard: a classic DLC over 8", lambda line: line.replace("d 2 06 AA", "d C 06 AA"),
     r"line 12: expected a classic DLC \(hex, ≤ 8\), got 'C'"),
    ("a one-digit data byte", lambda line: line.replace("06 AA", "6 AA"),
     r"line 12: expected 2 data bytes as two hex digits each, got '6 AA'"),
    ("a NaN time", lambda line: line.replace("0.060000", "nan"),
     r"line 12: expected a time between 0 and 4\.61e\+09 s, got 'nan'"),
    ("an unknown direction", lambda line: line.replace("Rx", "Qx"),
     r"line 12: expected 'ID Rx\|Tx d DLC BYTES…' or 'ID Rx\|Tx r \[DLC\]', got .*"),
    ("a LIN event", lambda line: "   0.060000 Li 3 Rx 8 00 00",
     r"line 12: expected a CAN channel number and an event, got 'Li 3 Rx 8 00 00'"),
    ("a time far in the past of its channel", lambda line: line.replace("0.060000", "0.001000"),
     r"line 12: time goes back on channel '0': 0\.001000000 s after 0\.050000000 s; "
     r"the file is corrupt \(or merged from several logs\)"),
]


@pytest.mark.parametrize("damage, expected", [(c[1], c[2]) for c in ASC_CASES], ids=[c[0] for c in ASC_CASES])
def test_a_damaged_asc_line_is_refused_with_its_line(tmp_path, damage, expected):
    lines = asc_frames()
    lines[6] = damage(lines[6])
    path = tmp_path / "drive.asc"
    path.write_text(asc(lines))
    refused(path, expected)


@pytest.mark.parametrize("text, expected", [
    (ASC_HEAD + "".join(f"{line}\n" for line in asc_frames()), r"line 26: expected 'End TriggerBlock' at the end; "
                                                                r"the file is truncated"),
    (asc(asc_frames()) + asc_frames()[0] + "\n", r"line 27: expected nothing after 'End TriggerBlock', got .*"),
    (asc(asc_frames()[:3] + ["Begin Triggerblock Mon Dec 1 10:00:01.000 am 2025"] + asc_frames()[3:]),
     r"line 9: a second 'Begin Triggerblock': hil reads ASC files of one trigger block \(split the file\)"),
    (asc(asc_frames()).replace("timestamps absolute", "timestamps relative"),
     r"line 2: ASC with relative timestamps is not supported; log with absolute timestamps"),
    (asc(asc_frames())[:-40], r"line 25: the last line has no line end; the file is truncated"),
], ids=["guard: no End TriggerBlock", "frames after the end", "two trigger blocks", "relative timestamps",
        "guard: cut mid-line"])
def test_asc_structure_is_checked(tmp_path, text, expected):
    path = tmp_path / "drive.asc"
    path.write_text(text)
    refused(path, expected)


@pytest.mark.parametrize("line, expected", [
    ("  1.000000 CANFD   1 Rx        123                                   1 0 9 16 " + "00 " * 16
     + "  102203  133   303000 e0006659 46500250 4b140250 20011736 2001040d", r"DLC 9 means 12 bytes, the line says 16"),
    ("  1.000000 CANFD   1 Rx        123                                   1 0 2  2 00 00"
     "   102203  133   200000 e0006659 46500250 4b140250 20011736 2001040d",
     r"BRS/ESI set on a classic frame \(the message flags have no EDL bit\)"),
    ("  1.000000 CANFD   1 Rx        123                                   0 0 8  8 00 00 00 00 00 00 00 00"
     "   102203  133   303000", r"expected 8 data bytes and 8 fields after them \(duration, bit count, flags, CRC, "
                                r"4 bit timings\), got 11 tokens"),
], ids=["FD DLC and length disagree", "BRS without EDL", "fields cut off"])
def test_asc_canfd_lines_are_checked(tmp_path, line, expected):
    path = tmp_path / "fd.asc"
    path.write_text(asc([line]))
    refused(path, r"line 6: " + expected)


def test_asc_canfd_line_without_edl_is_a_classic_frame(tmp_path):
    """python-can makes every CANFD line an FD frame; the message flags say whether it is one."""
    path = tmp_path / "fd.asc"
    path.write_text(asc(["  1.000000 CANFD   1 Rx        123                                   0 0 2  2 11 22"
                         "   102203  133   200000 e0006659 46500250 4b140250 20011736 2001040d"]))
    (ev,) = read_source(path).events
    assert (ev.id, ev.flags, ev.data) == (0x123, 0, b"\x11\x22")


def test_lenient_asc_skips_what_it_cannot_read_and_says_how_much(tmp_path):
    lines = asc_frames()
    for i in (3, 9, 14):
        lines[i] = "\x01\x02 not a frame at all"
    path = tmp_path / "drive.asc"
    path.write_text(asc(lines))
    refused(path, r"line 9: expected a time, got '\\x01\\x02'")
    log = read_source(path, lenient=True)
    assert len(log.events) == 17 and log.skipped == {"lines not understood (lenient)": 3}


def test_binary_garbage_in_a_text_log_names_line_and_byte(tmp_path):
    """Guard: refused before too (it now names the column, not the file offset)."""
    path = tmp_path / "drive.asc"
    raw = asc(asc_frames()).encode()
    at = raw.index(b"0.070000")
    path.write_bytes(raw[:at] + b"\xff\xfe\x00\x80" + raw[at + 4:])
    refused(path, r"line 13: not text \(byte 0xff at column 4\); the file is corrupt")


def test_an_enormous_line_is_refused_without_reading_it_whole(tmp_path):
    """Guard in part: refused before too, but only after reading the whole line into memory."""
    path = tmp_path / "drive.log"
    path.write_bytes(b"(1.000000) can0 123#11\n(1.000001) can0 123#" + b"11" * 100_000 + b"\n")
    refused(path, r"line 2: longer than 65,536 bytes; not a log line \(the file is corrupt\)")


@pytest.mark.parametrize("line, expected", [
    ("(1.000100) can0 7FFFFFFF#11", r"id 7FFFFFFF is over 29 bits \(bits 30/31 are not part of a candump id\)"),
    ("(1.000100) can0 20000123#1122", r"id 20000123 carries the error flag 0x20000000, but an error frame has 8 data "
                                      r"bytes \('20000123#' \+ 16 hex digits\) or none"),
    ("(1.000100) can0 123##81122", r"expected CAN FD flags 0-7 \(BRS 1, ESI 2, FDF 4\), got 8"),
    ("(1.000100) can0 123##0" + "00" * 9, r"expected a CAN FD payload length in \[0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, "
                                         r"20, 24, 32, 48, 64\], got 9"),
    ("(1.000100) can0 123#R9", r"expected a candump frame such as .*"),
    ("(1.000100) can0 800#11", r"expected a standard id ≤ 0x7ff, got 0x800"),
    ("(1000000000000.000000) can0 123#11", r"expected a time between 0 and 4\.61e\+09 s, got '1000000000000\.000000'"),
    ("(0.500000) can0 123#11", r"time goes back on channel 'can0': 0\.500000000 s after 1\.000000000 s; .*"),
], ids=["id over 29 bits", "error flag on a data frame", "FD flags", "guard: FD length", "remote DLC 9",
        "guard: standard id 0x800",
        "time 1e12 s", "time goes back"])
def test_a_bad_candump_frame_is_refused(tmp_path, line, expected):
    path = tmp_path / "s.log"
    path.write_text(f"(1.000000) can0 101#01\n{line}\n(2.000000) can0 103#03\n")
    refused(path, r"line 2: " + expected)


def test_candump_with_bom_and_crlf_reads_every_frame(tmp_path):
    path = tmp_path / "s.log"
    path.write_bytes("\ufeff(1.000000) can0 101#01\r\n(1.000001) can0 12345678##31122\r\n".encode())
    assert [(e.id, e.flags, e.data) for e in read_source(path).events] == [(0x101, 0, b"\x01"),
                                                                            (0x12345678, 0x39, b"\x11\x22")]


TRC = (";$FILEVERSION=2.1\n;$STARTTIME=45992.5\n;$COLUMNS=N,O,T,B,I,d,R,L,D\n;\n"
       + "".join(f"{n:>7} {n * 10.0:13.3f} DT  1 {0x100 + n:>8X} Rx -  2    {n:02X} AA\n" for n in range(1, 11)))


@pytest.mark.parametrize("old, new, expected", [
    ("      5        50.000 DT  1      105 Rx -  2    05 AA\n", "", r"line 9: expected message number 5, got 6: a "
                                                                   r"line is missing or garbled"),
    ("105 Rx -  2    05 AA", "105 Rx -  2    05", r"line 9: expected 2 data bytes as two hex digits each, got '05'"),
    ("105 Rx -  2    05 AA", "105 Rx -  2    05 AA 66", r"line 9: expected 2 data bytes as two hex digits each, "
                                                         r"got '05 AA 66'"),
    ("DT  1      105", "XX  1      105", r"line 9: expected a TRC 2\.1 record type \(DT, RR, FD, FB, FE, BI\), got 'XX'"),
    (";$FILEVERSION=2.1", ";$FILEVERSION=9.9", r"line 1: expected TRC file version 1\.0, 1\.1, 1\.3, 2\.0 or 2\.1, "
                                               r"got '9\.9'"),
    ("N,O,T,B,I,d,R,L,D", "N,O,T,B,I,d,R,L", r"line 5: expected ';\$COLUMNS=' with N, O, T, I, d, L or l, and D last "
                                             r"in a TRC 2\.x header"),
], ids=["a line missing", "a byte missing", "a byte too many", "guard: unknown type", "guard: unknown version",
        "guard: no data column"])
def test_trc_damage_is_refused(tmp_path, old, new, expected):
    path = tmp_path / "s.trc"
    assert old in TRC
    path.write_text(TRC.replace(old, new, 1))
    refused(path, expected)


CSV = "timestamp,arbitration_id,extended,remote,error,dlc,data\n" + "".join(
    f"{1.0 + n / 100!r},0x{0x100 + n:x},0,0,0,2,{'ESI='}\n" for n in range(10))


@pytest.mark.parametrize("old, new, expected", [
    ("timestamp,arbitration_id,extended,remote,error,dlc,data\n", "",
     r"line 1: expected the header 'timestamp,arbitration_id,extended,remote,error,dlc,data', got '1\.0,0x100,0,0,0,2,ESI='"),
    ("1.05,0x105,0,0,0,2,ESI=", "1.05,0x105,0,0,0,2,E*SI=", r"line 7: expected the data as base64, got 'E\*SI='"),
    ("1.05,0x105,0,0,0,2,ESI=", "1.05,0x105,0,0,0,3,ESI=", r"line 7: dlc 3 but 2 data bytes"),
    ("1.05,0x105,0,0,0,2,ESI=", "1.05,0x105,2,0,0,2,ESI=", r"line 7: expected 0 or 1 for extended, remote and error, "
                                                           r"got '2,0,0'"),
    ("1.05,0x105,0,0,0,2,ESI=", "1e400,0x105,0,0,0,2,ESI=", r"line 7: expected a time between 0 and 4\.61e\+09 s, "
                                                            r"got '1e400'"),
    ("1.05,0x105,0,0,0,2,ESI=", "1.05,0x105,0,0,0,2", r"line 7: expected 7 comma-separated fields \(.*\), got 6"),
], ids=["header missing", "bad base64", "dlc and data disagree", "flag 2", "guard: time 1e400",
        "guard: a field missing"])
def test_csv_damage_is_refused(tmp_path, old, new, expected):
    path = tmp_path / "s.csv"
    assert old in CSV
    path.write_text(CSV.replace(old, new, 1))
    refused(path, expected)


@pytest.mark.parametrize("fmt, text", [
    ("log", ""), ("asc", asc([])), ("trc", TRC.split("      1")[0]), ("csv", CSV.splitlines(True)[0]),
    ("serial", "# hil serial capture v1\n"), ("blf", None),
])
def test_an_empty_file_is_refused_naming_it(tmp_path, fmt, text):
    path = tmp_path / f"empty.{fmt}"
    if text is None:
        can.Logger(path).stop()
    else:
        path.write_text(text)
    refused(path, r"no frames in the file")


def test_a_file_of_non_frames_says_what_it_held(tmp_path):
    path = tmp_path / "stats.asc"
    path.write_text(asc(["   1.015991 1  Statistic: D 0 R 0 XD 0 XR 0 E 0 O 0 B 0.00%"] * 2))
    refused(path, r"no frames in the file \(only 2 ASC statistic lines\)")


# ---- BLF: the header's sizes and count, every container and object --------------------------------

def blf(path: Path, n: int = 350, level: int = 0) -> bytes:
    """A python-can BLF of ``n`` classic frames; ``level`` 0 stores its containers uncompressed, so
    object ``k`` (from 1) starts at byte ``144 + 32 + 48 * (k - 1)``."""
    writer = can.BLFWriter(path, compression_level=level)
    for i in range(n):
        writer.on_message_received(can.Message(timestamp=1.0 + i / 1000, arbitration_id=0x100 + i % 8,
                                               is_extended_id=False, data=bytes([i % 256, 0xAA])))
    writer.stop()
    return path.read_bytes()


def obj(k: int) -> int:
    return 144 + 32 + 48 * (k - 1)


def patched(raw: bytes, at: int, fmt: str, value: int) -> bytes:
    out = bytearray(raw)
    struct.pack_into(fmt, out, at, value)
    return bytes(out)


BLF_CASES = [
    ("guard: an object size corrupt (larger)", lambda r: patched(r, obj(30) + 8, "<L", 4000),
     r"object 30: expected a CAN_MESSAGE object of 48 bytes, got 4000; the file is corrupt"),
    ("guard: an object size corrupt (smaller)", lambda r: patched(r, obj(30) + 8, "<L", 20),
     r"object 30: expected an object size of 32\.\.16777216 bytes, got 20"),
    ("an object size off by a frame", lambda r: patched(r, obj(30) + 8, "<L", 96),
     r"object 30: expected a CAN_MESSAGE object of 48 bytes, got 96; the file is corrupt"),
    ("guard: a signature bit flipped", lambda r: patched(r, obj(30), "<B", ord("M")),
     r"object 30: expected the object signature 'LOBJ', got b'MOBJ'; the previous object's size or the data is corrupt"),
    ("the header's object count lies", lambda r: patched(r, 4 + 4 + 8 + 8 + 8, "<L", 351),
     r"file header: counts 351 objects, the file holds 350; objects are missing or the file is corrupt"),
    ("an unknown header version", lambda r: patched(r, obj(30) + 6, "<H", 3),
     r"object 30: expected header version 1 \(32 bytes\) or 2 \(40 bytes\), got version 3 of 32 bytes"),
    ("timestamp flags", lambda r: patched(r, obj(30) + 16, "<L", 7),
     r"object 30: expected timestamp flags 1 \(10 µs\) or 2 \(1 ns\), got 7"),
    ("a classic DLC of 12", lambda r: patched(r, obj(30) + 32 + 3, "<B", 12),
     r"object 30: CAN_MESSAGE: expected a classic DLC ≤ 8, got 12"),
    ("guard: a standard id over 11 bits",
     lambda r: patched(r, obj(30) + 32 + 4, "<L", 0x800),
     r"object 30: expected a standard id ≤ 0x7ff, got 0x800"),
    ("an unknown compression method", lambda r: patched(r, 144 + 16, "<H", 5),
     r"container at byte 144: expected compression method 0 or 2, got 5"),
    ("the container's stated size lies", lambda r: patched(r, 144 + 16 + 8, "<L", 96),
     r"container at byte 144: the container says it holds 96 bytes, it holds 16800; the file is corrupt"),
    ("a container that is not one", lambda r: patched(r, 144 + 12, "<L", 1),
     r"container at byte 144: expected a log container \(type 10\), got type 1"),
    ("the header size absurd", lambda r: patched(r, 4, "<L", 1 << 30),
     r"file header: expected a header size of 72\.\.4096 bytes, got 1073741824"),
    ("guard: not a BLF at all", lambda r: b"LOGX" + r[4:], r"byte 0: expected the BLF signature 'LOGG', got b'LOGX'; not a BLF file"),
    ("guard: trailing garbage", lambda r: r + b"\x00" * 64,
     r"container at byte 16976: expected the object signature 'LOBJ', got b'\\x00\\x00\\x00\\x00'; the file is corrupt"),
]


@pytest.mark.parametrize("damage, expected", [(c[1], c[2]) for c in BLF_CASES], ids=[c[0] for c in BLF_CASES])
def test_a_damaged_blf_is_refused_naming_the_object(tmp_path, damage, expected):
    path = tmp_path / "drive.blf"
    path.write_bytes(damage(blf(path)))
    refused(path, expected)


def test_blf_object_size_corruption_that_python_can_reads_silently(tmp_path):
    """The campaign's case: python-can read 29 of 350 frames without a word."""
    path = tmp_path / "drive.blf"
    path.write_bytes(patched(blf(path, level=6), 0, "<4s", b"LOGG"))  # compressed, as loggers write
    raw = bytearray(zlib.decompress(path.read_bytes()[144 + 32:]))
    struct.pack_into("<L", raw, 48 * 29 + 8, 60_000)
    packed = zlib.compress(bytes(raw))
    head = bytearray(path.read_bytes()[:144 + 32])
    struct.pack_into("<L", head, 144 + 8, 32 + len(packed))
    size = 144 + 32 + len(packed) + (32 + len(packed)) % 4
    struct.pack_into("<Q", head, 4 + 4 + 8, size)
    path.write_bytes(bytes(head) + packed + b"\0" * ((32 + len(packed)) % 4))
    assert len(list(can.BLFReader(path))) == 29  # python-can: no error
    refused(path, r"object 30: the last 15,\d+ byte\(s\) of the last container are not a whole object; the file is "
                  r"truncated, or an object's size is corrupt")


def test_a_cut_blf_with_its_size_patched_is_refused(tmp_path):
    """The campaign's case: cut inside the last container, the header's file size patched to match."""
    path = tmp_path / "drive.blf"
    raw = blf(path, level=6)
    cut = raw[: len(raw) - 200]
    path.write_bytes(patched(cut, 4 + 4 + 8, "<Q", len(cut)))
    refused(path, r"container at byte 144: the file ends inside the container \(it claims \d+ bytes\), after byte "
                  rf"{len(cut)}; it is truncated")


@pytest.mark.parametrize("cut", [0, 50, 144, 150, 144 + 16, 144 + 32, 144 + 32 + 48 * 100 + 7, -1])
def test_blf_cut_at_every_structural_boundary_is_refused(tmp_path, cut):
    """Guard: the header's file size caught these before too."""
    path = tmp_path / "drive.blf"
    raw = blf(path)
    path.write_bytes(raw[:cut])
    message = refused(path, r".*")
    assert "truncated" in message or "no frames" in message or "says the file has" in message


def test_a_corrupt_zlib_container_is_refused(tmp_path):
    """Guard: refused before too (as "unreadable", naming record 1)."""
    path = tmp_path / "drive.blf"
    raw = bytearray(blf(path, level=6))
    raw[144 + 32 + 40] ^= 0xFF
    path.write_bytes(bytes(raw))
    refused(path, r"container at byte 144: (the compressed data is corrupt \(.*\)|the container says .*)")


def test_blf_frames_of_other_buses_are_counted_not_lost(tmp_path):
    path = tmp_path / "drive.blf"
    writer = can.BLFWriter(path, compression_level=0)
    writer.on_message_received(can.Message(timestamp=1.0, arbitration_id=0x10, is_extended_id=False, data=b"\x01"))
    writer.log_event("marker", 1.5)
    writer.on_message_received(can.Message(timestamp=2.0, arbitration_id=0x11, is_extended_id=False, data=b"\x02"))
    writer.stop()
    log = read_source(path)
    assert [e.id for e in log.events] == [0x10, 0x11] and log.skipped == {"BLF GLOBAL_MARKER objects (not CAN frames)": 1}
    assert [log.where(i) for i in range(2)] == ["drive.blf object 1", "drive.blf object 3"]


@pytest.mark.parametrize("fd_flags, expected", [
    (0x2, r"object 1: bit rate switch / error state flags on a classic frame \(they need CAN FD\)"),
    (0x1, r"object 1: CAN_FD_MESSAGE: DLC 9 means 12 bytes, the object holds 8"),
], ids=["BRS on a classic frame", "FD length lies"])
def test_blf_fd_flags_and_lengths_are_checked(tmp_path, fd_flags, expected):
    path = tmp_path / "fd.blf"
    writer = can.BLFWriter(path, compression_level=0)
    writer.on_message_received(can.Message(timestamp=1.0, arbitration_id=0x10, is_extended_id=False, is_fd=True,
                                           bitrate_switch=True, data=bytes(12)))
    writer.stop()
    body = 144 + 32 + 32  # the object's fields: channel, flags, dlc, id, frame length, bit count, FD flags, valid bytes
    raw = patched(path.read_bytes(), body + 13, "<B", fd_flags)
    raw = patched(raw, body + 14, "<B", 8)  # 8 valid bytes
    path.write_bytes(patched(raw, body + 3, "<B", 8) if fd_flags == 0x2 else raw)  # DLC 8 for the classic frame
    refused(path, expected)


def test_canoe_restore_points_are_structure_not_counted(tmp_path):
    """CANoe ends a file with a container of restore-point objects (type 115) its count leaves out."""
    path = tmp_path / "drive.blf"
    raw = blf(path, n=3)
    points = b"".join(struct.pack("<4sHHLL", b"LOBJ", 32, 1, size, 115) + bytes(size - 16) for size in (56, 60))
    container = struct.pack("<4sHHLL", b"LOBJ", 16, 1, 32 + len(points), 10) + struct.pack("<H6xL4x", 0, len(points))
    path.write_bytes(patched(raw + container + points, 4 + 4 + 8, "<Q", len(raw) + len(container) + len(points)))
    log = read_source(path)
    assert len(log.events) == 3 and not log.skipped


def test_blf_containers_expand_only_to_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "EXPAND_LIMIT", 64 * 1024)
    path = tmp_path / "bomb.blf"
    blf(path, n=5000, level=9)
    refused(path, r"container at byte \d+: the containers expand to more than 0 MiB; refusing to inflate more")


# ---- compressed logs -----------------------------------------------------------------------------

def test_a_gzipped_log_reads_like_the_plain_one(tmp_path):
    plain = tmp_path / "drive.asc"
    plain.write_text(asc(asc_frames()))
    packed = tmp_path / "drive.asc.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert read_source(packed).events == read_source(plain).events


def test_a_gzip_bomb_stops_at_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "EXPAND_LIMIT", 1 << 20)
    path = tmp_path / "bomb.log.gz"
    path.write_bytes(gzip.compress(b"(1.000000) can0 123#11\n" + b"\n" * (4 << 20)))
    refused(path, r"line \d+: the gzip stream expands to more than 1 MiB; refusing to inflate more")


@pytest.mark.parametrize("damage, expected", [
    (lambda raw: raw[: len(raw) // 2], r"line \d+: the gzip stream is cut short; the file is truncated"),
    (lambda raw: raw[:-8] + bytes(8), r"line \d+: the gzip stream is corrupt \(CRC check failed .*\)"),
    (lambda raw: b"not gzip at all\n", r"line 1: the gzip stream is corrupt \(Not a gzipped file .*\)"),
], ids=["cut", "CRC", "not gzip"])
def test_a_damaged_gzip_is_refused(tmp_path, damage, expected):
    path = tmp_path / "drive.log.gz"
    path.write_bytes(damage(gzip.compress("".join(f"({i}.000000) can0 123#11\n" for i in range(1, 2000)).encode())))
    refused(path, expected)


def test_a_cut_gzipped_blf_names_where_its_content_ends(tmp_path):
    plain = tmp_path / "drive.blf"
    packed = tmp_path / "drive.blf.gz"
    raw = gzip.compress(blf(plain, level=6))
    packed.write_bytes(raw[: len(raw) // 2])
    refused(packed, r"byte [\d,]+ of its content: the gzip stream is cut short; the file is truncated")
    packed.write_bytes(raw)
    assert read_source(packed).events == read_source(plain).events


# ---- MCAP and MF4 --------------------------------------------------------------------------------

def recording(path: Path) -> Path:
    from hil.recording import Recorder

    with Recorder(path) as rec:
        for i in range(20):
            rec.frame("chassis", 1_000_000 * i, 0x10 + i % 3, 0, bytes([i]))
    return path


def mcap_chunk(raw: bytes) -> tuple[int, int]:
    """Offset and length of the first chunk record's body."""
    pos = 8
    while raw[pos] != 0x06:
        pos += 9 + struct.unpack_from("<Q", raw, pos + 1)[0]
    return pos + 9, struct.unpack_from("<Q", raw, pos + 1)[0]


def test_an_mcap_chunk_that_lies_about_its_size_is_refused(tmp_path):
    path = recording(tmp_path / "r.mcap")
    raw = bytearray(path.read_bytes())
    body, _ = mcap_chunk(raw)
    size = struct.unpack_from("<Q", raw, body + 16)[0]  # start, end, uncompressed size
    struct.pack_into("<Q", raw, body + 16, size * 1000)
    path.write_bytes(bytes(raw))
    refused(path, rf"chunk at log time 0: it says it holds {size * 1000} bytes, it holds {size}; the file is corrupt")


def test_mcap_chunks_expand_only_to_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "EXPAND_LIMIT", 100)
    refused(recording(tmp_path / "r.mcap"), r"record \d+: the chunks expand to more than 0 MiB; refusing to inflate more")


def mcap_of(path: Path, topics: dict[str, list[bytes]]) -> Path:
    """An MCAP written with the mcap library (not hil's recorder): each topic's JSON payloads."""
    from mcap.writer import Writer

    with open(path, "wb") as f:
        w = Writer(f)
        w.start()
        schema = w.register_schema("x", "jsonschema", b"{}")
        t = 0
        for topic, payloads in topics.items():
            channel = w.register_channel(topic, "json", schema)
            for payload in payloads:
                t += 1
                w.add_message(channel, t, payload, t)
        w.finish()
    return path


def test_mcap_payloads_that_are_not_hil_frames_are_refused_not_a_crash(tmp_path):
    path = mcap_of(tmp_path / "foreign.mcap", {"/can/chassis": [b'{"id": "not a number"}']})
    refused(path, r"unreadable MCAP \(.*\)")


def test_mcap_topics_that_are_not_frames_are_reported_as_left_out(tmp_path):
    path = mcap_of(tmp_path / "mixed.mcap", {"/can/chassis": [b'{"id":16,"flags":0,"dlc":1,"data":[1]}'],
                                             "/camera": [b"{}"] * 3})
    log = read_source(path)
    assert len(log.events) == 1 and log.skipped == {"MCAP messages on topics that are neither CAN nor serial (/camera)": 3}


def test_an_mcap_frame_out_of_range_is_refused(tmp_path):
    path = mcap_of(tmp_path / "bad.mcap", {"/can/chassis": [b'{"id":4096,"flags":0,"dlc":1,"data":[1]}']})
    refused(path, r"message 1: expected a standard id ≤ 0x7ff, got 0x1000")


def test_mf4_without_asammdf_says_what_to_install(tmp_path):
    path = tmp_path / "drive.mf4"
    writer = can.Logger(path)
    writer.on_message_received(can.Message(timestamp=1.0, arbitration_id=0x10, data=b"\x01"))
    writer.stop()
    code = ("import sys; sys.modules['asammdf'] = None\n"
            "from hil.stimulus.readers import read_source\n"
            "from hil.errors import StimulusError\n"
            f"try:\n    read_source({str(path)!r})\nexcept StimulusError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == f"{path}: reading MF4 needs asammdf, which is not installed: pip install 'hil[mf4]'"


# ---- what a stimulus file may be -----------------------------------------------------------------

def test_a_fifo_is_refused_at_once_not_read(tmp_path):
    """Guard: refused before too, but as "no such file"."""
    path = tmp_path / "drive.log"
    os.mkfifo(path)
    with pytest.raises(StimulusError, match=rf"^stimulus file {re.escape(str(path))} is not a regular file \(a FIFO\)$"):
        read_source(path)


@pytest.mark.parametrize("target, kind", [("/dev/zero", "a character device"), ("/dev/urandom", "a character device")])
def test_a_device_behind_a_link_is_refused(tmp_path, target, kind):
    """Guard: refused before too, but as "no such file"."""
    path = tmp_path / "drive.blf"
    path.symlink_to(target)
    with pytest.raises(StimulusError, match=rf"^stimulus file {re.escape(str(path))} is not a regular file \({kind}\)$"):
        read_source(path)


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.log"
    with open(path, "wb") as f:
        f.truncate(readers.FILE_LIMIT + 1)  # sparse: no disk, no reading
    with pytest.raises(StimulusError, match=rf"^stimulus file {re.escape(str(path))} is 256\.0 MiB; at most 256\.0 MiB "
                                            r"is accepted$"):
        read_source(path)


def test_frames_are_read_only_up_to_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "FRAME_LIMIT", 100)
    path = tmp_path / "s.log"
    path.write_text("".join(f"({i}.000000) can0 123#11\n" for i in range(1, 200)))
    refused(path, r"line 101: a stimulus reads at most 100 frames from its files; this one has more \(cut the log to "
                  r"the part the bench needs\)", max_frames=100)
