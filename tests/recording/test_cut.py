"""A recording cut by SIGKILL is read in full up to its last flush by the stock MCAP reader
(``make_reader(f).iter_messages()``, which gave up with RecordLengthLimitExceeded and 0 messages),
by hil's loader, and is judged by ``hil analyze`` with a warning of what was cut."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import struct
import subprocess
import sys
import textwrap
import zlib

import pytest
from mcap.reader import make_reader

from hil.recording import load, schema
from hil.recording.mcapwriter import PAGE, McapWriter

WRITER = textwrap.dedent("""
    import sys, time
    from hil.recording.mcapwriter import McapWriter
    f = open(sys.argv[1], "wb")
    w = McapWriter(f)
    w.start()
    channel = w.register_channel("/x", "json", w.register_schema("x", "jsonschema", b"{}"))
    for batch in range(int(sys.argv[2])):
        for i in range(100):
            n = batch * 100 + i
            w.add_message(channel, n, b'{"n":%d}' % n)
        w.flush()
    for i in range(50):  # never flushed: lost with the process
        w.add_message(channel, 10**9 + i, b'{"n":-1}')
    print("flushed", flush=True)
    time.sleep(600)
""")


def stock_messages(data: bytes) -> list[int]:
    """The log times of every message the stock MCAP reader reads, its normal way."""
    return [m.log_time for _, _, m in make_reader(io.BytesIO(data)).iter_messages()]


@pytest.mark.parametrize("batches", [1, 7, 40])
def test_a_sigkilled_writer_leaves_a_file_the_stock_reader_reads_up_to_the_last_flush(tmp_path, batches):
    path = tmp_path / "killed.mcap"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(batches)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "flushed\n"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert stock_messages(path.read_bytes()) == list(range(100 * batches))
    rec = load(path)
    assert not rec.complete and "was not closed" in rec.cut


class Tape(McapWriter):
    """A writer that keeps every write it makes, to replay the file as it was after each one."""

    def __init__(self, devnull) -> None:
        super().__init__(devnull)
        self.writes: list[tuple[int, bytes]] = []

    def _write_at(self, offset: int, data: bytes) -> None:
        self.writes.append((offset, bytes(data)))


def replay(writes: list[tuple[int, bytes]]):
    """``(k, file)``: the file after the first ``k`` writes, and with the next one torn by a kill
    at each page boundary it crosses (the kernel copies a write page by page)."""

    def put(image: bytearray, offset: int, data: bytes) -> bytearray:
        image.extend(bytes(max(0, offset + len(data) - len(image))))
        image[offset:offset + len(data)] = data
        return image

    image = bytearray()
    for k, (offset, data) in enumerate(writes):
        for boundary in range((offset // PAGE + 1) * PAGE, offset + len(data), PAGE):
            yield k, bytes(put(bytearray(image), offset, data[:boundary - offset]))
        put(image, offset, data)
        yield k + 1, bytes(image)


def test_every_moment_of_writing_leaves_a_readable_file(tmp_path):
    """Whatever write a kill interrupts, and wherever the kernel tears it, the stock reader and
    hil's loader read every message of every flush committed before, and nothing else breaks."""
    rnd = random.Random(12)
    with open(os.devnull, "wb") as devnull:
        tape = Tape(devnull)
        tape.start()
        can = tape.register_channel("/can/x", "json", tape.register_schema("x", "jsonschema", b"{}"))
        pad = tape.register_channel("/pad", "json", tape.register_schema("pad", "jsonschema", b"{}"))
        tape.add_metadata("hil", {"started_ns": "0"})
        flushes, n = [], 0  # (writes done after the flush, messages committed by then)
        for _ in range(25):
            for _ in range(rnd.randint(1, 80)):  # incompressible payloads: chunks that span pages
                tape.add_message(can, n, schema.encode_can(n & 0x7FF, 0, rnd.randbytes(8)))
                tape.add_message(pad, n, json.dumps({"pad": rnd.randbytes(rnd.randint(0, 400)).hex()}).encode())
                n += 1
            tape.flush()
            flushes.append((len(tape.writes), 2 * n))
        tape.finish()
    path = tmp_path / "state.mcap"
    for k, state in replay(tape.writes):
        committed = max((m for done, m in flushes if done <= k), default=0)
        times = stock_messages(state)
        assert len(times) >= committed, f"after write {k}: {len(times)} of {committed} messages"
        assert times == sorted(times)
        path.write_bytes(state)
        loaded = load(path).can.get("x")
        assert 2 * (0 if loaded is None else len(loaded)) == len(times)  # the CAN half of them
    whole = list(replay(tape.writes))[-1][1]
    assert len(stock_messages(whole)) == 2 * n
    reader = make_reader(io.BytesIO(whole), validate_crcs=True)
    assert reader.get_summary().statistics.message_count == 2 * n  # indexed
    assert len(list(reader.iter_messages())) == 2 * n
    footer = len(whole) - 8 - 29  # the footer's summary CRC covers the summary up to its own CRC
    summary_start, _ = struct.unpack_from("<QQ", whole, footer + 9)
    assert zlib.crc32(whole[summary_start:footer + 25]) == struct.unpack_from("<I", whole, footer + 25)[0]
    path.write_bytes(whole)
    assert load(path, strict=True).complete
