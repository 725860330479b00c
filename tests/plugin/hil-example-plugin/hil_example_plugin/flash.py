"""``method: uart-loader``: a small AN3155 client of its own (sync, global erase, write, go) over
pyserial — the kind of vendor loader a plugin brings. It talks to the MCU's system bootloader, so
an emulated MCU comes up with BOOT0 high for it. 8E1 on a UART, 8N1 on a pty (which has no parity)."""

from __future__ import annotations

import functools
import operator
from typing import Literal

import serial
from pydantic import Field, StrictInt

from hil.errors import FlashError
from hil.flash import FlashJob, FlashMethod
from hil.protocol.an3155 import uart_parity
from hil.spec.common import Name
from hil.spec.rig import FlashSpec

ACK, NACK = 0x79, 0x1F


class UartLoaderFlash(FlashSpec):
    method: Literal["uart-loader"]
    bus: Name
    address: StrictInt = Field(0x0800_0000, ge=0, le=0xFFFF_FFFF)
    block: StrictInt = Field(256, ge=4, le=256, multiple_of=4)


class UartLoader(FlashMethod):
    model = UartLoaderFlash

    def flash(self, job: FlashJob) -> None:
        spec = job.spec
        image = job.image.to_bytes()
        image += b"\xff" * (-len(image) % 4)
        port = job.buses.serial_port(spec.bus, side="host")
        with serial.serial_for_url(port, job.rig.buses[spec.bus].baudrate, parity=uart_parity(port),
                                   timeout=5) as s:
            s.reset_input_buffer()
            s.write(b"\x7f")
            _ack(s, "sync")
            _command(s, 0x43, "erase")
            s.write(b"\xff\x00")  # global erase
            _ack(s, "global erase")
            for off in range(0, len(image), spec.block):
                chunk = image[off:off + spec.block]
                _command(s, 0x31, "write")
                s.write(_checked((spec.address + off).to_bytes(4, "big")))
                _ack(s, f"write address {spec.address + off:#010x}")
                s.write(_checked(bytes([len(chunk) - 1]) + chunk))
                _ack(s, f"write {len(chunk)} bytes at {spec.address + off:#010x}")
                job.progress("write", off + len(chunk), len(image))
            _command(s, 0x21, "go")
            s.write(_checked(spec.address.to_bytes(4, "big")))
            _ack(s, "go address")


def _command(s: serial.Serial, code: int, what: str) -> None:
    s.write(bytes([code, code ^ 0xFF]))
    _ack(s, what)


def _checked(data: bytes) -> bytes:
    return data + bytes([functools.reduce(operator.xor, data, 0)])


def _ack(s: serial.Serial, what: str) -> None:
    got = s.read(1)
    if got != bytes([ACK]):
        raise FlashError(f"uart-loader {what}: expected ACK, got {got.hex() or 'nothing'}")
