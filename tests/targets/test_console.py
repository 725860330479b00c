"""Serial console capture on a real pty pair, and the console log ready checks wait on."""

from __future__ import annotations

import os
import re
import threading
import time

import pytest
import serial

from hil.clock import now_ns
from hil.targets.console import ConsoleLog, SerialConsole
from hil.values import ConsoleLine


@pytest.fixture
def pty():
    """(device fd, host tty path): the device writes, the console reads the host end."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    yield master, path
    os.close(master)
    os.close(slave)


class Collect:
    def __init__(self):
        self.lines: list[ConsoleLine] = []
        self.got = threading.Condition()

    def __call__(self, line: ConsoleLine) -> None:
        with self.got:
            self.lines.append(line)
            self.got.notify_all()

    def wait(self, n: int) -> list[str]:
        with self.got:
            assert self.got.wait_for(lambda: len(self.lines) >= n, timeout=30), self.lines
            return [l.text for l in self.lines]


def _port(path: str) -> serial.Serial:
    port = serial.Serial(path, 115200, timeout=0.05)
    return port


def test_lines_are_split_stamped_and_tagged(pty):
    device, path = pty
    got = Collect()
    before = now_ns()
    with SerialConsole(_port(path), "mcu-console", got):
        os.write(device, b"boot v1.2\r\nready")
        os.write(device, b"\nsecond\n")
        assert got.wait(3) == ["boot v1.2", "ready", "second"]
    line = got.lines[0]
    assert line.source == "mcu-console" and line.stream == "serial"
    assert before <= line.t_ns <= now_ns()


def test_bytes_from_before_opening_are_dropped_and_counted(pty):
    device, path = pty
    port = _port(path)
    old = b"old line\nold garbage without newline"
    os.write(device, old)
    deadline = time.monotonic() + 30
    while port.in_waiting < len(old) and time.monotonic() < deadline:
        time.sleep(0.01)
    got = Collect()
    with SerialConsole(port, "c", got) as console:
        assert console.stale_bytes == len(old)
        os.write(device, b"fresh\n")
        assert got.wait(1) == ["fresh"]


def test_step_drops_a_partial_line(pty):
    device, path = pty
    got = Collect()
    with SerialConsole(_port(path), "c", got) as console:
        os.write(device, b"complete\nhalf a li")
        assert got.wait(1) == ["complete"]
        deadline = time.monotonic() + 30
        while len(console._partial) < 9 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert console.step() == 9
        os.write(device, b"after reset\n")
        assert got.wait(2) == ["complete", "after reset"]
        assert console.stale_bytes == 9


def test_steps_while_a_device_prints_never_end_the_capture_or_glue_lines(pty):
    device, path = pty
    got = Collect()
    stop = threading.Event()

    def print_lines() -> None:  # whole lines, one write each, as fast as the pty takes them
        n = 0
        while not stop.is_set():
            os.write(device, b"line-%d\n" % n)
            n += 1

    with SerialConsole(_port(path), "c", got) as console:
        printer = threading.Thread(target=print_lines)
        printer.start()
        try:
            for _ in range(300):  # resets while the device prints
                console.step()
                time.sleep(0.001)
        finally:
            stop.set()
            printer.join()
        console.step()
        os.write(device, b"final\n")
        texts = got.wait(1)
        while texts[-1] != "final":
            texts = got.wait(len(texts) + 1)
    assert console.stale_bytes > 0
    # a step cuts a line the device is printing, so a line may start mid-way; it never carries bytes
    # from before the step in front of it ("li" + "line-42" would read "liline-42")
    assert [t for t in texts if not re.fullmatch(r"(?:line-|ine-|ne-|e-|-)?\d*|final", t)] == []


def test_close_hands_out_an_unterminated_last_line(pty):
    device, path = pty
    got = Collect()
    console = SerialConsole(_port(path), "c", got)
    os.write(device, b"panic: no newline")
    deadline = time.monotonic() + 30
    while len(console._partial) < 17 and time.monotonic() < deadline:
        time.sleep(0.01)
    console.close()
    assert [l.text for l in got.lines] == ["panic: no newline"]


def test_console_log_marks_tails_and_waits():
    log = ConsoleLog(keep=5)
    for i in range(8):
        log.add(ConsoleLine(i, "a", f"line {i}"))
    assert [l.text for l in log.tail("a", 3)] == ["line 5", "line 6", "line 7"]
    assert log.mark("a") == 8
    assert log.find("a", re.compile("line 6")).t_ns == 6
    assert log.find("a", re.compile("line 6"), since=7) is None
    threading.Timer(0.02, log.add, [ConsoleLine(98, "a", "noise first")]).start()
    threading.Timer(0.2, log.add, [ConsoleLine(99, "a", "ready")]).start()
    assert log.find("a", re.compile("^ready$"), since=8, timeout_s=30).t_ns == 99
