"""A GDB remote-protocol server for the emulated MCU, on 127.0.0.1 (``target remote``).

``gdb-multiarch firmware.elf -ex 'target remote 127.0.0.1:PORT'`` attaches to a running MCU: the
core halts, and gdb reads and writes registers and memory, sets breakpoints (software and
hardware alike: a code hook at the address), steps one instruction, continues, and interrupts
with Ctrl-C. A core stopped by a fault stays inspectable: attach after the fault report and the
registers are those of the faulting context. ``monitor reset`` resets the MCU. Detaching (or
closing the connection) removes the breakpoints and lets the core run on.

One client at a time. The connection is served on its own thread; everything that touches the
core runs on the core's thread (unicorn is not thread-safe), handed over through a queue while
the core is halted. Time does not stop for a halted core: the run clock goes on, so a timer that
came due while halted fires once on resume (its period is one pending bit).
"""

from __future__ import annotations

import queue
import socket
import struct
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from unicorn import UC_HOOK_CODE, Uc
from unicorn.arm_const import UC_ARM_REG_PC, UC_ARM_REG_R0, UC_ARM_REG_SP, UC_ARM_REG_LR, UC_ARM_REG_XPSR

if TYPE_CHECKING:
    from hil.cortexm.core import Machine

REGS = [UC_ARM_REG_R0 + i for i in range(13)] + [UC_ARM_REG_SP, UC_ARM_REG_LR, UC_ARM_REG_PC, UC_ARM_REG_XPSR]
TARGET_XML = ('<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><target version="1.0">'
              '<architecture>arm</architecture><feature name="org.gnu.gdb.arm.m-profile">'
              + "".join(f'<reg name="r{i}" bitsize="32"/>' for i in range(13))
              + '<reg name="sp" bitsize="32" type="data_ptr"/><reg name="lr" bitsize="32"/>'
                '<reg name="pc" bitsize="32" type="code_ptr"/><reg name="xpsr" bitsize="32"/></feature></target>')
SIGINT, SIGTRAP, SIGSEGV = 2, 5, 11
POLL_S = 0.05
JOB_TIMEOUT_S = 10.0


class Debugger:
    """Serves gdb for one machine; the machine calls :meth:`holds`, :meth:`serve`, :meth:`attach`
    and :meth:`breakpoint` from its core thread."""

    def __init__(self, machine: Machine, port: int = 0):
        self.machine = machine
        self.server = socket.create_server(("127.0.0.1", port))
        self.port = self.server.getsockname()[1]
        self.breakpoints: dict[int, Any] = {}  # address → hook handle on the current core
        self.halted = False
        self.signal = SIGTRAP
        self.skip: int | None = None  # a breakpoint address to run over once (resuming from it)
        self.work: queue.Queue[tuple[Callable[[], Any], queue.Queue]] = queue.Queue()
        self.stopped = threading.Event()  # the core reached a stop the client waits for
        self.closed = False
        threading.Thread(target=self._accept, daemon=True, name="gdb").start()

    def close(self) -> None:
        self.closed = True
        self.server.close()

    # -- the core's side -------------------------------------------------------------------------

    def holds(self) -> bool:
        return self.halted

    def serve(self, stop: threading.Event) -> None:
        """While halted: run what the client asks on this (the core's) thread."""
        try:
            job, reply = self.work.get(timeout=POLL_S)
        except queue.Empty:
            return
        try:
            reply.put((True, job()))
        except Exception as exc:  # noqa: BLE001 — an error answers the client, it never kills the core
            reply.put((False, exc))

    def attach(self, uc: Uc) -> None:
        """A new core (after reset): put the breakpoints on it."""
        for address in list(self.breakpoints):
            self.breakpoints[address] = self.hook(uc, address)

    def breakpoint(self, pc: int) -> bool:
        """A BKPT instruction: halt for the client if one is attached."""
        if self._client is None:
            return False
        self.halt(SIGTRAP)
        return True

    def halt(self, signal: int) -> None:
        self.signal = signal
        self.halted = True
        self.stopped.set()

    def hook(self, uc: Uc, address: int) -> Any:
        handle = uc.hook_add(UC_HOOK_CODE, self._on_code, begin=address, end=address)
        uc.ctl_remove_cache(address, address + 4)  # code translated before has no hook in it
        return handle

    def unhook(self, uc: Uc, address: int) -> None:
        uc.hook_del(self.breakpoints.pop(address))
        uc.ctl_remove_cache(address, address + 4)

    def _on_code(self, uc: Uc, address: int, size: int, _: Any) -> None:
        if self.skip == address:
            self.skip = None
            return
        self.halt(SIGTRAP)
        uc.emu_stop()

    # -- the client's side -----------------------------------------------------------------------

    _client: socket.socket | None = None

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self._client = client
            self.halt(SIGSEGV if self.machine.fault is not None else SIGTRAP)  # gdb expects a halted target
            try:
                Session(self, client).run()
            except OSError:
                pass
            finally:
                self._client = None
                client.close()
                self.halted = True  # the core stops to have its breakpoints taken off, then runs on
                try:
                    self.on_core(self._remove_all)
                except TimeoutError:
                    pass
                self.halted = False

    def on_core(self, job: Callable[[], Any]) -> Any:
        """Run ``job`` on the core's thread (the core is halted) and return its result."""
        reply: queue.Queue = queue.Queue()
        self.work.put((job, reply))
        try:
            ok, value = reply.get(timeout=JOB_TIMEOUT_S)
        except queue.Empty:
            raise TimeoutError("the core did not answer (is the MCU still running?)") from None
        if not ok:
            raise value
        return value

    def _remove_all(self) -> None:
        for address in list(self.breakpoints):
            self.unhook(_engine(self.machine), address)


class Session:
    """One gdb connection: packets in, answers out (GDB remote serial protocol)."""

    def __init__(self, debugger: Debugger, sock: socket.socket):
        self.dbg = debugger
        self.machine = debugger.machine
        self.sock = sock
        self.buffer = b""
        self.running = False

    def run(self) -> None:
        while True:
            packet = self._packet()
            if packet is None:
                return
            if packet == b"\x03":
                if self.running:
                    self.dbg.halt(SIGINT)
                continue
            answer = self._handle(packet.decode("latin-1"))
            if answer is not None:
                self._send(answer)
            if packet[:1] == b"D":
                return

    # -- wire ------------------------------------------------------------------------------------

    def _packet(self) -> bytes | None:
        """The next packet (acknowledged), or b'\\x03' for an interrupt; None when the client left."""
        while True:
            if self.running and self.dbg.stopped.is_set():
                self.running = False
                self._send(self._stop_reply())
            start = self.buffer.find(b"$")
            head = self.buffer if start < 0 else self.buffer[:start]
            if b"\x03" in head:  # an interrupt (Ctrl-C) outside any packet
                self.buffer = self.buffer[self.buffer.index(b"\x03") + 1:]
                return b"\x03"
            end = self.buffer.find(b"#", start)
            if start >= 0 and end >= 0 and len(self.buffer) >= end + 3:
                body = self.buffer[start + 1:end]
                self.buffer = self.buffer[end + 3:]
                self.sock.sendall(b"+")
                return body
            self.sock.settimeout(POLL_S if self.running else None)
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            if not data:
                return None
            self.buffer += data

    def _send(self, text: str) -> None:
        body = text.encode("latin-1")
        self.sock.sendall(b"$" + body + b"#" + f"{sum(body) & 0xFF:02x}".encode())

    # -- commands --------------------------------------------------------------------------------

    def _handle(self, p: str) -> str | None:
        core = self.dbg.on_core
        if p == "?":
            return self._stop_reply()
        if p.startswith("qSupported"):
            return "PacketSize=4000;qXfer:features:read+"
        if p.startswith("qXfer:features:read:target.xml:"):
            offset, length = (int(x, 16) for x in p.rsplit(":", 1)[1].split(","))
            chunk = TARGET_XML[offset:offset + length]
            return ("m" if offset + length < len(TARGET_XML) else "l") + chunk
        if p == "qAttached":
            return "1"
        if p in ("qC",):
            return "QC1"
        if p == "qfThreadInfo":
            return "m1"
        if p == "qsThreadInfo":
            return "l"
        if p.startswith(("H", "T")):
            return "OK"
        if p == "g":
            # unicorn 2's Uc has reg_read_batch, which the Uc its type hints name lacks
            return "".join(struct.pack("<I", v).hex()
                           for v in core(lambda: _engine(self.machine).reg_read_batch(REGS)))  # type: ignore[attr-defined]
        if p.startswith("p"):
            n = int(p[1:], 16)
            return struct.pack("<I", core(lambda: _engine(self.machine).reg_read(REGS[n]))).hex() if n < len(REGS) else "E00"
        if p.startswith("P"):
            reg, value = p[1:].split("=")
            if int(reg, 16) >= len(REGS):
                return "E00"
            core(lambda: _engine(self.machine).reg_write(REGS[int(reg, 16)], struct.unpack("<I", bytes.fromhex(value))[0]))
            return "OK"
        if p.startswith("m"):
            address, length = (int(x, 16) for x in p[1:].split(","))
            data = core(lambda: self.machine.read_memory(address, length))
            return data.hex() if data is not None else "E14"
        if p.startswith("M"):
            where, hexdata = p[1:].split(":")
            address = int(where.split(",")[0], 16)
            return "OK" if core(lambda: self.machine.write_memory(address, bytes.fromhex(hexdata))) else "E14"
        if p[:2] in ("Z0", "Z1", "z0", "z1"):
            address = int(p[3:].split(",")[0], 16)
            core(lambda: self._breakpoint(address, p[0] == "Z"))
            return "OK"
        if p.startswith("c"):
            self._resume(step=False)
            return None
        if p.startswith("s"):
            self._resume(step=True)
            return None
        if p.startswith("qRcmd,"):
            return self._monitor(bytes.fromhex(p[6:]).decode(errors="replace").strip())
        if p.startswith("D"):
            return "OK"
        if p == "k":
            return None
        return ""  # not supported

    def _stop_reply(self) -> str:
        return f"S{self.dbg.signal:02x}"

    def _breakpoint(self, address: int, insert: bool) -> None:
        dbg, uc = self.dbg, _engine(self.machine)
        if insert and address not in dbg.breakpoints:
            dbg.breakpoints[address] = dbg.hook(uc, address)
        elif not insert and address in dbg.breakpoints:
            dbg.unhook(uc, address)

    def _resume(self, step: bool) -> None:
        dbg = self.dbg
        pc = dbg.on_core(lambda: _engine(self.machine).reg_read(UC_ARM_REG_PC))
        dbg.skip = pc if pc in dbg.breakpoints else None
        dbg.stopped.clear()
        if step:
            dbg.on_core(self.machine.step)
            dbg.halt(SIGSEGV if self.machine.fault is not None else SIGTRAP)
        elif self.machine.fault is not None:
            dbg.halt(SIGSEGV)  # a faulted core does not run again until reset
        else:
            dbg.halted = False
        self.running = True

    def _monitor(self, command: str) -> str:
        if command == "reset":
            self.dbg.on_core(lambda: self.machine.reset("reset by the debugger (monitor reset)"))
            return "4f4b0a"  # "OK\n", hex-encoded console output
        return "".join(f"{b:02x}" for b in f"unknown monitor command {command!r}; try: reset\n".encode())


def _engine(machine: Machine) -> Uc:
    """The unicorn engine of the machine a debugger is attached to: one that runs."""
    assert machine.uc is not None  # gdb attaches to a machine once it is running
    return machine.uc
