"""``stm32-uart``: flash an image through the STM32 system bootloader (AN3155) over pyserial.

Sequence: sync (0x7F) → Get (which erase command the part has) → Get ID (the part, from hil's
device table or the rig's ``geometry``) → Read Memory of its flash-size register (one id covers
several sizes) → erase the pages or sectors the image covers → Write
Memory in 256-byte blocks → Read Memory back and compare → Go.
Every refusal becomes a :class:`FlashError` naming the step and the byte that came (or that none did).

``enter: rts-dtr`` drives a real board into its bootloader on the one open of the port, with the
usual adapter wiring: DTR → NRST and RTS → BOOT0, through the adapter's TTL outputs, which are
active low (a line asserted, ``True`` in pyserial, is 0 V). So DTR asserted holds the part in
reset and RTS deasserted puts BOOT0 high — the convention stm32loader uses by default. pyserial
asserts both lines when it opens a port unless told otherwise, which would hold BOOT0 low; so the
lines are set before the port opens (pyserial applies them as it opens; the kernel asserts both
for the microseconds before that, while DTR holds the part in reset anyway), reset is then
released, and after Go the part is reset again with BOOT0 low so that it boots its new flash.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import serial

from hil.errors import FlashError
from hil.flash import FlashJob, FlashMethod, FlashProgress, no_progress
from hil.protocol import an3155 as P
from hil.spec.rig import SerialBus, Stm32UartFlash

REPLY_TIMEOUT_S = 1.0
RDP_HINT = ("; the part refuses the command itself: its readout protection (RDP) is on. Readout "
            "Unprotect (stm32flash -k PORT) lifts it and erases the flash")
ERASE_TIMEOUT_S = 40.0  # a real mass erase of 1 MiB takes tens of seconds
RESET_PULSE_S = 0.05  # NRST held low this long (the part needs microseconds)
BOOT_DELAY_S = 0.1  # from reset release until the bootloader listens (AN2606: a few ms)


def open_port(port: str, baudrate: int = 115_200, enter: str = "manual",
              serial_class: type[serial.Serial] = serial.Serial) -> serial.Serial:
    """Open ``port`` 8E1 (8N1 on a pty, see :func:`hil.protocol.an3155.open_uart`), once. With
    ``enter="rts-dtr"`` the part is held in reset with BOOT0 high as the port opens, then
    released into its bootloader. ``serial_class`` is the pyserial class (a subclass may watch
    the lines)."""
    ser = serial_class()
    ser.port, ser.baudrate, ser.timeout = port, baudrate, REPLY_TIMEOUT_S
    ser.bytesize, ser.parity, ser.stopbits = 8, P.uart_parity(port), 1
    if enter == "rts-dtr":
        ser.dtr = True  # NRST low: in reset while the port opens
        ser.rts = False  # BOOT0 high: the system bootloader at reset
    try:
        ser.open()
    except (serial.SerialException, OSError) as exc:
        raise FlashError(f"stm32-uart open: cannot open {port}: {exc}") from None
    if enter == "rts-dtr":
        time.sleep(RESET_PULSE_S)
        try:
            _lines(ser, ("dtr", False))  # out of reset: the part samples BOOT0 and starts its bootloader
        except FlashError:
            ser.close()
            raise
        time.sleep(BOOT_DELAY_S)
    return ser


def boot_flash(port: serial.Serial) -> None:
    """``rts-dtr``: reset the part with BOOT0 low, so that it boots from flash."""
    _lines(port, ("rts", True), ("dtr", True), ("dtr", False))


def _lines(port: serial.Serial, *steps: tuple[str, bool]) -> None:
    """Set modem lines in order, holding each reset assertion for :data:`RESET_PULSE_S`."""
    for line, value in steps:
        try:
            setattr(port, line, value)
        except (serial.SerialException, OSError) as exc:
            raise FlashError(f"stm32-uart enter rts-dtr: cannot drive {line.upper()} on {port.port}: {exc} "
                             "(the port needs modem lines; use enter: manual and set BOOT0 by hand)") from None
        if line == "dtr" and value:
            time.sleep(RESET_PULSE_S)


@contextlib.contextmanager
def session(port: str, baudrate: int = 115_200, enter: str = "manual",
            serial_class: type[serial.Serial] = serial.Serial) -> Iterator[serial.Serial]:
    """The port for one flashing session: opened into the bootloader as ``enter`` says, and with
    ``rts-dtr`` left booting the flash when the session succeeded."""
    ser = open_port(port, baudrate, enter, serial_class)
    try:
        yield ser
        if enter == "rts-dtr":
            boot_flash(ser)
    finally:
        ser.close()


class Refused(FlashError):
    """The bootloader answered NACK (it is still in step: it waits for the next command)."""


class Stm32Bootloader:
    """The host side of AN3155 on an open serial port."""

    def __init__(self, port: serial.Serial):
        self.port = port
        self.commands: tuple[int, ...] = ()
        self.version = 0

    def sync(self) -> None:
        """Send 0x7F; a NACK means the bootloader was already synchronised (as stm32flash accepts).
        A bootloader left synchronised by an earlier session takes 0x7F for a command byte and
        says nothing: a second 0x7F completes that command, and the NACK for it comes back."""
        self.port.reset_input_buffer()
        self.port.write(bytes([P.SYNC]))
        self.port.timeout = REPLY_TIMEOUT_S
        byte = self.port.read(1)
        if not byte:
            self.port.write(bytes([P.SYNC]))
            byte = self._read("sync", 1)
        if byte[0] not in (P.ACK, P.NACK):
            raise FlashError(f"stm32-uart sync: expected ACK (0x79), got {byte[0]:#04x}")

    def get(self) -> tuple[int, tuple[int, ...]]:
        self._command(P.GET)
        n = self._read("Get", 1)[0]
        data = self._read("Get", n + 1)
        self._reply("Get")
        self.version, self.commands = data[0], tuple(data[1:])
        return self.version, self.commands

    def get_version(self) -> int:
        self._command(P.GET_VERSION)
        version = self._read("Get Version", 3)[0]
        self._reply("Get Version")
        return version

    def get_id(self) -> int:
        self._command(P.GET_ID)
        n = self._read("Get ID", 1)[0]
        pid = int.from_bytes(self._read("Get ID", n + 1), "big")
        self._reply("Get ID")
        return pid

    def read_memory(self, address: int, length: int) -> bytes:
        step = f"Read Memory at {address:#010x}"
        self._command(P.READ_MEMORY)
        self._send(step + " (address)", P.with_checksum(address.to_bytes(4, "big")))
        self._send(step + " (length)", P.with_checksum(bytes([length - 1])))
        return self._read(step, length)

    def flash_size(self, device: P.Stm32Device) -> int | None:
        """The flash size the part's flash-size register gives, in bytes (None: the family has no
        such register, or the part refuses to read it, as with readout protection on)."""
        if device.family.flash_size_reg is None:
            return None
        try:
            return int.from_bytes(self.read_memory(device.family.flash_size_reg, 2), "little") * P.KIB
        except Refused:
            return None

    def write_memory(self, address: int, data: bytes) -> None:
        step = f"Write Memory at {address:#010x}"
        self._command(P.WRITE_MEMORY)
        self._send(step + " (address)", P.with_checksum(address.to_bytes(4, "big")))
        block = bytes([len(data) - 1]) + data
        self._send(step + " (data)", block + bytes([P.xor(block)]))

    def erase(self, pages: list[int] | None) -> None:
        """Erase ``pages`` (None: mass erase) with whichever erase command Get announced."""
        extended = P.EXTENDED_ERASE in self.commands
        if not extended and pages and max(pages) > P.LEGACY_MAX_PAGE:
            raise FlashError(f"stm32-uart Erase: page {max(pages)} cannot be named by Erase (0x43), which "
                             f"takes pages 0..{P.LEGACY_MAX_PAGE}; this bootloader has no Extended Erase")
        self._command(P.EXTENDED_ERASE if extended else P.ERASE)
        if extended:
            body = P.MASS_ERASE.to_bytes(2, "big") if pages is None else (
                (len(pages) - 1).to_bytes(2, "big") + b"".join(p.to_bytes(2, "big") for p in pages))
        else:
            body = b"\xff" if pages is None else bytes([len(pages) - 1, *pages])
        self._send("Erase", P.with_checksum(body),
                   timeout=ERASE_TIMEOUT_S)

    def go(self, address: int) -> None:
        self._command(P.GO)
        self._send(f"Go {address:#010x}", P.with_checksum(address.to_bytes(4, "big")))

    # -- wire ----------------------------------------------------------------------------------

    def _command(self, code: int) -> None:
        self.port.write(P.command(code))
        self._reply(P.COMMAND_NAMES[code], if_nacked=RDP_HINT if code in P.REFUSED_WHEN_PROTECTED else "")

    def _send(self, step: str, data: bytes, timeout: float = REPLY_TIMEOUT_S) -> None:
        self.port.write(data)
        self._reply(step, timeout=timeout)

    def _reply(self, step: str, accept_nack: bool = False, timeout: float = REPLY_TIMEOUT_S,
               if_nacked: str = "") -> None:
        byte = self._read(step, 1, timeout)[0]
        if byte == P.ACK or (accept_nack and byte == P.NACK):
            return
        if byte == P.NACK:
            raise Refused(f"stm32-uart {step}: expected ACK (0x79), got NACK (0x1f){if_nacked}")
        raise FlashError(f"stm32-uart {step}: expected ACK (0x79), got {byte:#04x}")

    def _read(self, step: str, n: int, timeout: float = REPLY_TIMEOUT_S) -> bytes:
        self.port.timeout = timeout
        data = self.port.read(n)
        if len(data) < n:
            raise FlashError(f"stm32-uart {step}: expected {n} byte(s) within {timeout:g} s, "
                             f"got {len(data)}: {data.hex() or 'nothing'} (is the MCU in bootloader mode?)")
        return data


def device_for(pid: int, geometry: P.Stm32Device | None = None) -> P.Stm32Device:
    """The part that answered Get ID with ``pid``: the rig's geometry for it, else hil's table."""
    if geometry is not None:
        if geometry.pid != pid:
            raise FlashError(f"stm32-uart Get ID: the part answers product id {pid:#05x}, but the rig's "
                             f"flash.geometry describes {geometry.pid:#05x}")
        return geometry
    device = P.DEVICES.get(pid)
    if device is None:
        raise FlashError(f"stm32-uart Get ID: product id {pid:#05x} is not in hil's device table "
                         f"({P.known_ids()}); give the part's flash layout in the rig as flash.geometry "
                         "(docs/deploy.md)")
    return device


def flash(port: serial.Serial, image: bytes, address: int = 0x0800_0000, progress: FlashProgress = no_progress,
          geometry: P.Stm32Device | None = None) -> None:
    """Erase, write, verify and start ``image`` at ``address`` through the bootloader on ``port``."""
    bl = Stm32Bootloader(port)
    progress("sync", 0, 1)
    bl.sync()
    progress("sync", 1, 1)
    bl.get()
    device = device_for(bl.get_id(), geometry)
    if geometry is None:  # one product id covers several flash sizes: the part's register says which
        device = P.with_flash_size(device, bl.flash_size(device))
    if not device.flash_start <= address or address + len(image) > device.flash_end:
        raise FlashError(f"stm32-uart: {len(image)} bytes at {address:#010x} do not fit the flash of "
                         f"{device.name} ({device.describe()})")
    first, last = device.page_of(address), device.page_of(address + len(image) - 1)
    pages = list(range(first, last + 1))
    progress("erase", 0, len(pages))
    for i in range(0, len(pages), 255):  # Erase takes at most 255 pages per command in both forms
        bl.erase(pages[i:i + 255])
    progress("erase", len(pages), len(pages))
    padded = image + b"\xff" * (-len(image) % 4)  # the flash programs whole words
    for off in range(0, len(padded), P.MAX_BLOCK):
        bl.write_memory(address + off, padded[off:off + P.MAX_BLOCK])
        progress("write", min(off + P.MAX_BLOCK, len(padded)), len(padded))
    for off in range(0, len(padded), P.MAX_BLOCK):
        chunk = padded[off:off + P.MAX_BLOCK]
        back = bl.read_memory(address + off, len(chunk))
        if back != chunk:
            bad = next(i for i, (a, b) in enumerate(zip(back, chunk)) if a != b)
            raise FlashError(f"stm32-uart verify: byte at {address + off + bad:#010x} reads "
                             f"{back[bad]:#04x}, wrote {chunk[bad]:#04x}")
        progress("verify", min(off + P.MAX_BLOCK, len(padded)), len(padded))
    bl.go(address)
    progress("go", 1, 1)


class Stm32UartMethod(FlashMethod):
    """``method: stm32-uart``: into the bootloader as the rig's ``enter`` says (an emulated MCU's
    BOOT0 is its driver's, whatever ``enter`` says), then :func:`flash` on one open of the bus."""

    def flash(self, job: FlashJob) -> None:
        spec = job.spec
        assert isinstance(spec, Stm32UartFlash)  # the registry runs this method for its own model
        bus = job.rig.buses[spec.bus]
        assert isinstance(bus, SerialBus)  # checked with the rig: the flash bus is of the method's bus_kind
        enter = "manual" if job.emulated else spec.enter
        if enter == "emulated":
            raise FlashError(f"stm32-uart on target {job.target!r}: enter 'emulated' needs an emulated MCU; "
                             "use 'rts-dtr' or 'manual' for a real one")
        geometry = spec.geometry.device() if spec.geometry is not None else None
        with session(job.buses.serial_port(spec.bus, side="host"), bus.baudrate, enter) as port:
            flash(port, job.image.to_bytes(), spec.address, progress=job.progress, geometry=geometry)
