"""The firmware runtime in-process: ticks and periodic tasks on one timeline, handler filtering,
the processing delay measured from each frame's end-of-frame time, and printf."""

from __future__ import annotations

import threading

import can
import cantools
import pytest

from hil.clock import now_ns, unix_seconds
from hil.firmware.runtime import Mcu

DBC = """VERSION ""
BU_: A
BO_ 256 Ping: 2 A
 SG_ Value : 0|16@1+ (0.5,0) [0|1000] "" A
"""


def run_for(mcu: Mcu, until) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=mcu.run, args=(stop,))
    thread.start()
    try:
        until.wait(30)
    finally:
        stop.set()
        thread.join()


def test_ticks_and_periodic_tasks_share_one_timeline():
    mcu = Mcu("m", None, print, {}, tick_hz=1000)
    ticks, tens, done = [], [], threading.Event()
    mcu.on_tick(ticks.append)
    mcu.every("10ms", lambda: tens.append(ticks[-1]) or (len(tens) == 5 and done.set()))
    run_for(mcu, done)
    steps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert all(step % 1_000_000 == 0 and step > 0 for step in steps)  # on the 1 kHz grid, never bunched
    assert sum(step // 1_000_000 - 1 for step in steps) <= mcu.overruns  # gaps are counted ticks missed
    # each 10 ms task runs at the first tick at or after its due time; a late one does not shift the rest
    assert tens[:5] == [min(t for t in ticks if t >= tens[0] + i * 10_000_000) for i in range(5)]


def test_handlers_filter_by_id_and_decode_with_the_dbc():
    lines = []
    mcu = Mcu("m", None, lines.append, {}, dbc=cantools.database.load_string(DBC))
    seen, values = [], []
    mcu.on_frame(lambda m: seen.append(m.arbitration_id), ids=range(0x100, 0x102))
    mcu.on_message("Ping", lambda sig, m: values.append(sig["Value"]))
    for ident in (0x0FF, 0x100, 0x101, 0x102):
        mcu.receive(can.Message(arbitration_id=ident, data=b"\x10\x00", timestamp=unix_seconds(now_ns())))
    mcu.receive(can.Message(arbitration_id=0x100, is_error_frame=True))
    mcu.printf("value %d, %s", 3, "ok")
    assert seen == [0x100, 0x101] and values == [8.0] and lines == ["value 3, ok"]


def test_processing_delay_counts_from_the_end_of_frame():
    mcu = Mcu("m", None, print, {"delay": "20ms"})
    handled, done = [], threading.Event()
    mcu.on_frame(lambda m: handled.append((now_ns(), m)) or (len(handled) == 3 and done.set()))
    stamps = []
    for i in range(3):
        stamps.append(now_ns())
        mcu.receive(can.Message(arbitration_id=i, data=b"", timestamp=unix_seconds(stamps[-1])))
    run_for(mcu, done)
    assert [m.arbitration_id for _, m in handled] == [0, 1, 2]
    assert all(t - s >= 20_000_000 for (t, _), s in zip(handled, stamps))


def test_sending_without_a_bus_is_refused():
    mcu = Mcu("m", None, print, {})
    with pytest.raises(RuntimeError, match="MCU 'm' has no CAN bus attached"):
        mcu.send(can.Message(arbitration_id=1))


def test_a_raising_handler_halts_the_firmware():
    mcu = Mcu("m", None, print, {})
    mcu.on_tick(lambda deadline: None)
    mcu.on_frame(lambda m: 1 / 0)
    mcu.receive(can.Message(arbitration_id=1, timestamp=unix_seconds(now_ns())))
    with pytest.raises(ZeroDivisionError):
        mcu.run(threading.Event())  # returns at once: the fault stops the loop
