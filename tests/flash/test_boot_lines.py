"""``enter: rts-dtr``: the boot lines are driven on one open of the port, in a defined order.

A pty has no modem lines (the ioctl fails with ENOTTY, which pyserial itself ignores while it
opens a port), so the port is pyserial's own class with one addition: it records each line
change hil asks of it, at the point pyserial would issue the ioctl, and every byte written. The
flash in between is real: the emulated F4 process's bootloader on the other end of the pty.
"""

from __future__ import annotations

import errno
import os
import time

import pytest
import serial

from hil.errors import FlashError
from hil.flash import stm32

BASE = 0x0800_0000


class LineRecorder(serial.Serial):
    """pyserial's Serial, recording ``(time, what, value)`` for every open, line change, write and close."""

    events: list[tuple[float, str, object]] = []

    def open(self):
        self.events.append((time.monotonic(), "open", None))
        super().open()

    def _update_dtr_state(self):
        self.events.append((time.monotonic(), "dtr", self._dtr_state))
        self._ioctl(super()._update_dtr_state)

    def _update_rts_state(self):
        self.events.append((time.monotonic(), "rts", self._rts_state))
        self._ioctl(super()._update_rts_state)

    @staticmethod
    def _ioctl(update):
        try:
            update()
        except OSError as exc:  # a pty: no modem lines to set
            if exc.errno != errno.ENOTTY:
                raise

    def write(self, data):
        self.events.append((time.monotonic(), "write", bytes(data)[:1]))
        return super().write(data)

    def close(self):
        if self.is_open:
            self.events.append((time.monotonic(), "close", None))
        super().close()


@pytest.mark.parametrize("part", [0x413])
def test_rts_dtr_holds_reset_with_boot0_high_through_one_open_then_boots_the_flash(emulated_part):
    LineRecorder.events = events = []
    image = os.urandom(3000)
    with stm32.session(emulated_part.tty, 115_200, "rts-dtr", serial_class=LineRecorder) as port:
        stm32.flash(port, image, BASE)
    assert emulated_part.flash.read(BASE, len(image)) == image
    lines = [(what, value) for _, what, value in events if what != "write"]
    # DTR asserted = NRST low (reset), RTS deasserted = BOOT0 high; both set as the port opens
    assert lines == [("open", None), ("dtr", True), ("rts", False),  # in reset, BOOT0 high
                     ("dtr", False),  # out of reset: into the bootloader
                     ("rts", True), ("dtr", True), ("dtr", False),  # after Go: reset with BOOT0 low
                     ("close", None)]
    at = {name: [t for t, what, value in events if (what, value) == name] for name in
          [("dtr", True), ("dtr", False), ("write", b"\x7f")]}
    assert at[("dtr", False)][0] - at[("dtr", True)][0] >= stm32.RESET_PULSE_S  # a real reset pulse
    assert at[("write", b"\x7f")][0] - at[("dtr", False)][0] >= stm32.BOOT_DELAY_S  # the bootloader had time
    first_write = next(i for i, e in enumerate(events) if e[1] == "write")
    last_write = max(i for i, e in enumerate(events) if e[1] == "write")
    assert [e[1:] for e in events[:first_write]] == [("open", None), ("dtr", True), ("rts", False), ("dtr", False)]
    assert [e[1] for e in events[last_write + 1:]] == ["rts", "dtr", "dtr", "close"]


def test_a_failed_flash_leaves_the_lines_alone_and_closes(tmp_path):
    LineRecorder.events = events = []
    master, slave = os.openpty()  # nobody answers
    try:
        with pytest.raises(FlashError, match="stm32-uart sync"), stm32.session(
                os.ttyname(slave), 115_200, "rts-dtr", serial_class=LineRecorder) as port:
            stm32.flash(port, b"x" * 16)
    finally:
        os.close(master)
        os.close(slave)
    assert [(what, value) for _, what, value in events if what != "write"] == [
        ("open", None), ("dtr", True), ("rts", False), ("dtr", False), ("close", None)]


def test_a_port_without_modem_lines_is_refused_naming_the_line_and_closed():
    master, slave = os.openpty()
    try:
        with pytest.raises(FlashError, match=r"stm32-uart enter rts-dtr: cannot drive DTR on /dev/pts/\d+: .*"
                                             r"\(the port needs modem lines; use enter: manual"):
            stm32.open_port(os.ttyname(slave), enter="rts-dtr", serial_class=Unrecorded)
    finally:
        os.close(master)
        os.close(slave)
    assert Unrecorded.closed == 1


class Unrecorded(serial.Serial):
    """pyserial's Serial, counting closes of an open port."""

    closed = 0

    def close(self):
        Unrecorded.closed += self.is_open
        super().close()
