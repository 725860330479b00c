"""Every stimulus format reads back what was written, and fails early and precisely when cut or
corrupted."""

from __future__ import annotations

import re
from pathlib import Path

import can
import pytest

from hil.errors import StimulusError
from hil.canframe import message_flags
from hil.recording import Recorder
from hil.stimulus import serialcap
from hil.stimulus.events import SerialEvent
from hil.stimulus.readers import read_source

CAN_FORMATS = ["asc", "blf", "trc", "log", "csv", "mf4"]


def sample_messages(n: int = 40) -> list[can.Message]:
    return [can.Message(timestamp=50.0 + i * 0.0025, arbitration_id=0x100 + i % 4 if i % 5 else 0x18FF0001,
                        is_extended_id=not i % 5, data=bytes([i, i + 1, 0xAA][: 1 + i % 3]), channel=i % 2)
            for i in range(n)]


def write_log(path: Path, messages: list[can.Message]) -> Path:
    writer = can.Logger(path)
    for m in messages:
        writer.on_message_received(m)
    writer.stop()
    return path


@pytest.mark.parametrize("fmt", CAN_FORMATS)
def test_can_log_reads_back_ids_data_and_relative_timing(tmp_path, fmt):
    msgs = sample_messages()
    log = read_source(write_log(tmp_path / f"s.{fmt}", msgs))
    assert log.format == fmt
    assert [(e.id, e.data) for e in log.events] == [(m.arbitration_id, bytes(m.data)) for m in msgs]
    t0 = log.events[0].t_ns
    rel = [e.t_ns - t0 for e in log.events]
    assert all(abs(r - i * 2_500_000) <= 1_000 for i, r in enumerate(rel))  # logs keep µs
    assert [bool(e.flags & 1) for e in log.events] == [m.is_extended_id for m in msgs]
    if fmt != "csv":  # python-can's CSV has no channel column
        assert len(log.channels()) == 2


def varied_messages() -> list[can.Message]:
    """Standard, extended, remote, empty, CAN FD (with BRS / ESI, up to 64 bytes) and error frames."""
    out = []
    for i in range(60):
        t, ch = 1_700_000_000 + i / 1000, i % 2
        out.append([
            can.Message(timestamp=t, arbitration_id=0x100 + i, is_extended_id=False, data=bytes([i] * (i % 9)), channel=ch),
            can.Message(timestamp=t, arbitration_id=0x18FF0000 + i, data=bytes(range(8)), channel=ch),
            can.Message(timestamp=t, arbitration_id=0x123, is_extended_id=False, is_remote_frame=True, dlc=i % 9,
                        channel=ch),
            can.Message(timestamp=t, arbitration_id=0x321, is_extended_id=False, is_fd=True, bitrate_switch=bool(i % 4),
                        data=bytes(range(12)), channel=ch),
            can.Message(timestamp=t, arbitration_id=0x7FF, is_extended_id=False, is_fd=True,
                        error_state_indicator=True, data=bytes(range(64)), channel=ch),
            can.Message(timestamp=t, is_error_frame=True, channel=ch),
        ][i % 6])
    return out


SUPPORTED = {"asc": "all", "blf": "all", "log": "no remote DLC", "trc": "classic", "csv": "classic", "mf4": "no remote"}


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # asammdf's __del__
@pytest.mark.parametrize("fmt", CAN_FORMATS)
def test_strict_readers_agree_with_python_can_on_its_own_files(tmp_path, fmt):
    """On files python-can writes, every frame python-can reads back is read back here the same."""
    kept = [m for m in varied_messages() if not (
        (SUPPORTED[fmt] == "classic" and (m.is_fd or m.is_remote_frame or m.is_error_frame))
        or (SUPPORTED[fmt] == "no remote" and m.is_remote_frame))]
    path = write_log(tmp_path / f"s.{fmt}", kept)
    theirs = list(can.LogReader(path))
    ours = read_source(path).events
    assert len(ours) == len(theirs) == len(kept)
    for e, m in zip(ours, theirs):
        assert abs(e.t_ns - round(m.timestamp * 1e9)) < 1_000
        if m.is_error_frame:  # its id and extended flag mean nothing (python-can's candump reader drops its channel)
            assert e.flags & 0x3E == message_flags(m) & 0x3E
            continue
        assert (e.flags & 0x3F, e.channel) == (message_flags(m) & 0x3F, "" if m.channel is None else str(m.channel))
        if m.is_remote_frame:
            assert e.data == bytes(m.dlc if SUPPORTED[fmt] != "no remote DLC" else 0)
        else:
            assert (e.id, e.data) == (m.arbitration_id, bytes(m.data))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # asammdf's __del__
@pytest.mark.parametrize("fmt", CAN_FORMATS)
def test_truncated_can_log_fails_with_file_and_position(tmp_path, fmt):
    good = write_log(tmp_path / f"good.{fmt}", sample_messages(200)).read_bytes()
    cut = tmp_path / f"cut.{fmt}"
    cut.write_bytes(good[: len(good) * 2 // 3 + 1])
    with pytest.raises(StimulusError) as err:
        read_source(cut)
    msg = str(err.value)
    assert msg.startswith(f"{cut}: ")
    assert ("truncated" in msg or "corrupt" in msg) and (fmt == "mf4" or re.match(r"\S+: (line|container at byte) \d+: ", msg))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("fmt", CAN_FORMATS)
def test_corrupt_can_log_fails(tmp_path, fmt):
    raw = bytearray(write_log(tmp_path / f"good.{fmt}", sample_messages(200)).read_bytes())
    at = 0 if fmt == "mf4" else len(raw) // 2  # MF4 keeps its block tree at the front
    raw[at:at + 16] = b"\xff\x00\xfe" * 5 + b"\x01"
    bad = tmp_path / f"bad.{fmt}"
    bad.write_bytes(bytes(raw))
    with pytest.raises(StimulusError, match=f"^{bad}: "):
        read_source(bad)


@pytest.mark.parametrize("fmt, old, new", [
    ("asc", " 101 ", " 1zz "),
    ("log", "101#01", "101!01"),
    ("csv", ",0x101,", ",0xqq,"),
    ("trc", " 0101 ", " 01zz "),
])
def test_bad_line_in_text_log_names_the_record(tmp_path, fmt, old, new):
    path = write_log(tmp_path / f"s.{fmt}", sample_messages())
    text = path.read_text()
    assert old in text
    line = text[:text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(StimulusError, match=rf"^{path}: line {line}: expected "):
        read_source(path)


@pytest.mark.parametrize("line", ["(1.010000) can0 102#0203A", "(1.010000) can0 garbage", "(1.0x0000) can0 102#02",
                                  "(1.010000) can0 1022#02", "can0 102#02"])
def test_a_malformed_candump_line_is_refused_not_skipped(tmp_path, line):
    """python-can's reader skips such a line, or reads 0203A as 02 03 0A: the stimulus would change."""
    path = tmp_path / "s.log"
    path.write_text(f"(1.000000) can0 101#01\n{line}\n(1.020000) can0 103#03 R\n")
    with pytest.raises(StimulusError, match=rf"^{path}: line 2: expected a candump frame such as "):
        read_source(path)


def test_candump_remote_fd_and_error_frames_are_accepted(tmp_path):
    path = tmp_path / "s.log"
    path.write_text("(1.000000) can0 101#R\n(1.001000) can0 102#R4\n(1.002000) can1 12345678##3AABB\n"
                    "(1.003000) can0 20000080#0000000000000000\n")
    assert len(read_source(path).events) == 4


def test_classic_frame_longer_than_8_bytes_is_refused(tmp_path):
    path = tmp_path / "s.log"
    path.write_text("(1.000000) can0 123#0102\n(1.001000) can0 124#010203040506070809\n")
    with pytest.raises(StimulusError, match=r"line 2: expected a classic CAN payload of ≤ 8 bytes, got 9"):
        read_source(path)


def test_unknown_suffix_needs_a_format(tmp_path):
    path = tmp_path / "s.bin"
    path.write_bytes(b"")
    with pytest.raises(StimulusError, match="cannot tell the format"):
        read_source(path)
    with pytest.raises(StimulusError, match="missing.blf does not exist"):
        read_source(tmp_path / "missing.blf")


def test_serial_capture_round_trip_and_errors(tmp_path):
    path = tmp_path / "c.serial"
    events = [SerialEvent(1_000_000_000, "console", b"hello\r\n"), SerialEvent(1_012_500_000, "console", b"OK\r\n")]
    serialcap.write(path, events)
    assert read_source(path).events == events
    path.write_text(path.read_text() + "1.5 console 4g\n")
    with pytest.raises(StimulusError, match=rf"^{path}: line 4: expected bytes as an even number of hex digits"):
        read_source(path)
    path.write_text("2.0 console 41\n1.0 console 42\n")
    with pytest.raises(StimulusError, match="line 2: time goes back on channel 'console'"):
        read_source(path)
    path.write_text("2.0 console 41")
    with pytest.raises(StimulusError, match="truncated"):
        read_source(path)


def test_mcap_recording_is_a_stimulus_with_one_channel_per_bus(tmp_path):
    path = tmp_path / "r.mcap"
    with Recorder(path) as rec:
        rec.frame("chassis", 2_000, 0x10, 0, b"\x01")
        rec.frame("body", 1_000, 0x20, 1, b"\x02\x03")
        rec.serial("mcu-console", 1_500, b"boot\n")
    log = read_source(path)
    assert [(e.t_ns, e.channel) for e in log.events] == [(1_000, "body"), (1_500, "mcu-console"), (2_000, "chassis")]
    assert log.events[0].flags == 1 and log.events[0].data == b"\x02\x03"
    raw = path.read_bytes()
    path.write_bytes(raw[:-100])
    with pytest.raises(StimulusError, match=rf"^{path}: .*(truncated|unreadable)"):
        read_source(path)
