"""The Cortex-M3 core on unicorn, its exception model, and time on the run clock.

unicorn executes instructions; everything the core does beyond them is here. Between slices of
execution the machine takes exceptions the ARMv7-M way — the eight-word frame stacked on MSP or
PSP (aligned to 8 bytes with xPSR bit 9), EXC_RETURN in LR, handler mode in IPSR — and returns
from them when a handler branches to EXC_RETURN (unicorn stops there), tail-chaining into a
pending exception that preempts what would be resumed instead of unstacking.

Time follows the run clock. Core time — what SysTick, the timers and every peripheral count — is
set each time the core wakes from ``WFI``/``WFE``, to the time of what woke it. A frame wakes the
core at its end-of-frame time (the simbus stamp), so its interrupt is taken when it arrived however
late the host delivered it; core time then runs with the run clock, that much behind it. A timer event is run ahead: the core wakes a *lead* early, at the event's time,
and core time holds there until the run clock catches up. The handler runs as on an infinitely
fast core, and every frame it sends goes to the bus stamped with its core time (simcan's
``send_written``), so the bus releases it then: a 1 kHz task's frames leave on a 1 kHz grid
however late within the lead the host woke the core and however long the handler took on the
host. While the core is awake, time the host keeps its thread off the CPU (descheduled, or
waiting for the GIL) does not count as core time (``held_back``): core time then trails the run
clock, the core catches up event by event at its next wake-ups (an input after a due event waits
for it), and the frames it writes meanwhile are stamped with their core time — placed on the wire
there if it was free, and read late by the broker, which measures that as the bus's ``send``
error. So a host stall delays the firmware's answers, measured, but loses no tick; a core more
than ``MAX_LAG_NS`` behind skips ahead, the skip counted as its lateness. The lead is learned, like the
injector's spin (:class:`hil.stimulus.realtime.Waker`): the p99 of how long after its planned
wake-up the host had the core back in ``WFI`` (the last ``RECENT_EVENTS`` timer events), plus a
quarter, kept between ``MIN_LEAD_NS`` and ``MAX_LEAD_NS``; a quiet host gets a short lead, a busy
one a longer one.

The price of running ahead: a frame whose end of frame falls in the lead before a timer event is
taken at the event's time, up to the lead late (rolling the core back is not possible). The
machine never hides that: it is its own lateness, added to its bus node's ``delivery`` harness
error (:mod:`hil.harness`), which every bench judges against its budget, as the broker's ``send``
error is. Core time never runs backwards.

The core runs in slices that end at the next planned event (a SysTick zero, a timer compare, a
character leaving the USART), at most ``SLICE_NS`` long, so an input waits at most that long
while the core is busy. A busy core is paced to HCLK: a slice of N instructions takes at least N
cycles of it, so a counted delay loop takes as long as on the board (one instruction per cycle is
assumed). A host slower than HCLK gives the core fewer instructions, never a slower clock; the
watchdog counts only the core time the host gave (``core_now``).

A store that makes an exception take effect (enabling a pending interrupt, pending one) stops
unicorn inside the store; unicorn then executes that store again on resume, so the machine drops
the repeated access (``_replay``).

Faults stop the core and hand back a :class:`~hil.cortexm.faults.Fault`: the firmware's fault
handler is not run, so the report shows the faulting context itself.
"""

from __future__ import annotations

import ctypes
import re
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import can
from unicorn import (
    UC_ARCH_ARM, UC_HOOK_CODE, UC_HOOK_INTR, UC_HOOK_MEM_INVALID, UC_MODE_MCLASS, UC_MODE_THUMB, Uc, UcError)
from unicorn import unicorn_const as U
from unicorn.arm_const import (
    UC_ARM_REG_BASEPRI, UC_ARM_REG_CONTROL, UC_ARM_REG_FAULTMASK, UC_ARM_REG_IPSR, UC_ARM_REG_LR, UC_ARM_REG_MSP,
    UC_ARM_REG_PC, UC_ARM_REG_PRIMASK, UC_ARM_REG_PSP, UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_R3,
    UC_ARM_REG_R12, UC_ARM_REG_SP, UC_ARM_REG_XPSR)

from hil.clock import fine_timer_slack, frame_ns, now_ns
from hil.cortexm import faults, part as P
from hil.cortexm.bxcan import BxCan
from hil.cortexm.elf import Symbols
from hil.cortexm.gdb import SIGSEGV, Debugger
from hil.cortexm.gpio import Afio, Gpio
from hil.cortexm.iwdg import Iwdg
from hil.cortexm.mmio import Peripheral
from hil.cortexm.regs import RegisterSet
from hil.cortexm.rcc import APB1ENR, APB2ENR, IWDG_RESET, SOFTWARE_RESET, FlashInterface, Rcc
from hil.cortexm.scs import BUSFAULT, EXTERNAL, HARDFAULT, SVCALL, USAGEFAULT, Scs
from hil.cortexm.timer import Timer
from hil.cortexm.usart import Usart
from hil.firmware.flashmem import FlashMemory

SLICE_NS = 100_000  # longest slice of core time: the most a busy core delays an input
PACE_SLACK_NS = 2_000_000  # how far a busy core may run ahead of HCLK before it sleeps
MASKED_SLICE_NS = 5_000  # while an exception waits for a mask to drop (code run from RAM is not watched)
POLL_S = 0.05  # a sleeping core looks at its stop event this often
LEAD_NS = 300_000  # a sleeping core first wakes this early for its next event (then the lead is learned)
MIN_LEAD_NS, MAX_LEAD_NS = 100_000, 500_000  # the learned lead stays within these (see _learn)
RECENT_EVENTS = 512  # the lead is learned from this many recent timer events ...
LEARN_EVERY = 32  # ... again after this many
MAX_LAG_NS = 50_000_000  # the most core time trails the run clock (a host stalled longer skips ahead)
STALL_NS = 50_000  # an awake core's thread off the CPU longer than this: the host held it back
FRAME = struct.Struct("<8I")
HALF, WORD = struct.Struct("<H"), struct.Struct("<I")
STACKED = [UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_R3, UC_ARM_REG_R12, UC_ARM_REG_LR,
           UC_ARM_REG_PC, UC_ARM_REG_XPSR]
MASKS = [UC_ARM_REG_PRIMASK, UC_ARM_REG_FAULTMASK, UC_ARM_REG_BASEPRI]
MASK_SET = RegisterSet(MASKS)
PC_SET = RegisterSet([UC_ARM_REG_PC])
ENTRY_SET = RegisterSet(STACKED + [UC_ARM_REG_CONTROL, UC_ARM_REG_IPSR, UC_ARM_REG_SP])
RETURN_SET = RegisterSet([UC_ARM_REG_IPSR, UC_ARM_REG_XPSR, UC_ARM_REG_PSP, UC_ARM_REG_MSP, UC_ARM_REG_CONTROL, *MASKS])
EXC_RETURNS = {0xFFFF_FFF1: (False, False), 0xFFFF_FFF9: (True, False), 0xFFFF_FFFD: (True, True)}  # thread?, psp?
WFI, WFE, LOOP = 0xBF30, 0xBF20, 0xE7FE  # Thumb encodings (LOOP: "b ." — a default handler)
CPSIE = re.compile(rb"[\x61\x62]\xb6", re.DOTALL)  # cpsie f, cpsie i (little-endian half-words)
MSR_MASKS = re.compile(rb"[\x80-\x8f]\xf3[\x10-\x13]\x88", re.DOTALL)  # msr PRIMASK/BASEPRI/BASEPRI_MAX/FAULTMASK, rN
INTR_UDEF, INTR_SWI, INTR_BKPT, INTR_EXCEPTION_EXIT = 1, 2, 7, 8
SYSTEM_MEMORY = 0x1FFF_F000  # system memory and option bytes: the device signature lives here
UID = bytes.fromhex("3dff6d064e57343827582243")


def _quiet(msg: can.Message) -> bool:
    """The bus's echo of our own frame, sent fine: news that can wait for the core's next wake-up."""
    return not msg.is_rx and not msg.is_error_frame


def unmasking_sites(flash: bytes) -> list[int]:
    """Flash offsets just after every instruction that can unmask interrupts (CPSIE, MSR to a mask
    register): unicorn does not tell when they run, so the machine looks there. A data word that
    happens to look like one only costs a check if it is ever executed, which it is not."""
    cpsie = [m.end() for m in CPSIE.finditer(flash) if m.start() % 2 == 0]
    msr = [m.end() for m in MSR_MASKS.finditer(flash) if m.start() % 2 == 0]
    return sorted(cpsie + msr)


class Machine:
    """An STM32F103 executing the image in its flash on the run clock."""

    def __init__(self, flash: FlashMemory, *, part: P.Part = P.PART,
                 console: Callable[[bytes], None] | None = None, console_baud: int | None = None,
                 diagnostic: Callable[[str], None] = lambda text: None,
                 can_bus: can.BusABC | None = None, can_bitrate: int | None = None,
                 symbols: Symbols | None = None, gdb_port: int | None = None):
        self.flash = flash
        self.part = part
        self.symbols = symbols
        self._diagnostic = diagnostic
        self.inbox: deque[tuple[str, Any]] = deque()
        self.wake = threading.Event()
        self.rcc = Rcc(self, P.RCC)
        self.flash_if = FlashInterface(self, P.FLASH_IF, "FLASH")
        self.scs = Scs(self, P.PPB_START)
        self.nvic = self.scs.nvic
        self.usart1 = Usart(self, P.USART1, "USART1", P.USART1_IRQ, apb2=True, out=console, baudrate=console_baud)
        self.can1 = BxCan(self, P.CAN1, can_bus, can_bitrate)
        self.iwdg = Iwdg(self, P.IWDG, "IWDG")
        # base → (peripheral, (enable register, bit) or None when always clocked)
        self.peripherals: dict[int, tuple[Peripheral, tuple[int, int] | None]] = {
            P.RCC: (self.rcc, None), P.FLASH_IF: (self.flash_if, None), P.IWDG: (self.iwdg, None),
            P.AFIO: (Afio(self, P.AFIO, "AFIO"), (APB2ENR, 0)),
            P.USART1: (self.usart1, (APB2ENR, 14)),
            P.USART2: (Usart(self, P.USART2, "USART2", P.USART2_IRQ, apb2=False), (APB1ENR, 17)),
            P.USART3: (Usart(self, P.USART3, "USART3", P.USART3_IRQ, apb2=False), (APB1ENR, 18)),
            P.TIM2: (Timer(self, P.TIM2, "TIM2", P.TIM2_IRQ), (APB1ENR, 0)),
            P.CAN1: (self.can1, (APB1ENR, 25)),
        }
        for i in range(5):
            base = P.GPIOA + 0x400 * i
            self.peripherals[base] = (Gpio(self, base, f"GPIO{'ABCDE'[i]}"), (APB2ENR, 2 + i))
        # the peripherals that act on the run clock (the others only answer accesses)
        self.timed = [p for p, _ in self.peripherals.values() if type(p).due is not Peripheral.due] + [self.scs]
        self._flash_mem = ctypes.create_string_buffer(part.flash_size)
        self._ram = ctypes.create_string_buffer(part.ram_size)
        self._system = ctypes.create_string_buffer(0x1000)
        self._unclocked: set[str] = set()
        self._register_sets: dict[tuple[int, ...], RegisterSet] = {}
        self.uc: Uc | None = None
        self.floor = 0  # core time at the last wake-up (ahead of the run clock: it holds until reached)
        self.offset = 0  # core time − run clock after a wake-up behind the run clock (≤ 0)
        self.stolen_ns = 0  # core time the host kept from the core (slices it ran late)
        self.paced = 0  # core time the instructions run so far would take at HCLK
        self.sleeping = False
        self.lead_ns = LEAD_NS  # how early a sleeping core wakes for a timer event (learned)
        self._handled: deque[int] = deque(maxlen=RECENT_EVENTS)  # planned wake-up → back in WFI, run clock
        self._planned: int | None = None  # the run-clock time the core planned to wake for the event it handles
        self._events = 0  # timer events handled
        self._awake: tuple[int, int] | None = None  # run clock and thread CPU time at the last look (awake)
        self._replay: tuple[int, int, int] | None = None
        self._reset_why: tuple[str, bool] | None = None
        self._intr: int | None = None
        self._bad_access: tuple[int, int, int, int] | None = None
        self.fault: faults.Fault | None = None
        self.debugger = Debugger(self, gdb_port) if gdb_port is not None else None

    # -- what the MCU process and peripherals call -----------------------------------------------

    def now(self, run: int | None = None) -> int:
        """Core time (see the module's docstring), at run-clock time ``run`` (default: now)."""
        return max(self.floor, (now_ns() if run is None else run) + self.offset)

    def core_now(self) -> int:
        """Core time less what the host kept from the core: the watchdog's time base."""
        return self.now() - self.stolen_ns

    def receive(self, msg: can.Message) -> None:
        """A frame from the bus (called on the bus's receive thread). The bus's echo of our own
        frame does not wake the core (its mailbox completed at its end of frame already): it is
        taken at the core's next wake-up, unless it reports an error."""
        self.inbox.append(("can", msg))
        if not _quiet(msg):
            self.wake.set()

    def fault_event(self, kind: str, can_id: int, t_ns: int) -> None:
        """A fault the bus injected (called on the bus's receive thread)."""
        self.inbox.append(("fault", (kind, can_id, t_ns)))
        self.wake.set()

    def console_input(self, data: bytes) -> None:
        """Bytes typed into the console (called on the console's reader thread)."""
        self.inbox.append(("uart", data))
        self.wake.set()

    def irq(self, number: int, level: bool) -> None:
        self.nvic.line(EXTERNAL + number, level)

    def ipsr(self) -> int:
        return self.uc.reg_read(UC_ARM_REG_IPSR) if self.uc is not None else 0

    def diagnostic(self, text: str) -> None:
        """A line from the emulator about the firmware (not from it) on the console."""
        self._diagnostic(f"hil: {text}")

    def clocks_changed(self) -> None:
        now = self.now()
        for p in self.timed:
            p.retime(now)
        self.flash_if.check_wait_states()

    def flash_changed(self, address: int, length: int) -> None:
        """Flash was programmed or erased (in-application): reload it and drop stale translations."""
        start = address - self.part.flash_start
        ctypes.memmove(ctypes.addressof(self._flash_mem) + start, self.flash.read(address, length), length)
        assert self.uc is not None  # programmed by the running machine's flash interface
        for base in (0, self.part.flash_start):
            self.uc.ctl_remove_cache(base + start, base + start + length)

    def request_reset(self, why: str, watchdog: bool = False) -> None:
        self._reset_why = (why, watchdog)
        self.wake.set()

    # -- life ------------------------------------------------------------------------------------

    def run(self, stop: threading.Event, on_fault: Callable[[faults.Fault], None] = lambda fault: None
            ) -> faults.Fault | None:
        """Power on and run until ``stop`` is set; return the fault that stopped the core, if one
        did. ``on_fault`` hears of it at once; the core then stays halted (a debugger can inspect
        it) until ``stop``."""
        fine_timer_slack()
        self.flash_changed_all()
        self._reset()
        if self.debugger is not None:
            port = self.debugger.port
            self.diagnostic(f"gdb server on 127.0.0.1:{port} (target remote 127.0.0.1:{port})")
        try:
            while not stop.is_set():
                if self.fault is not None or (self.debugger is not None and self.debugger.holds()):
                    self._halted(stop)
                    continue
                self.held_back()
                self._inputs()
                if self._reset_why is not None:
                    self._system_reset()
                    continue
                self._step_time(stop)
                if self.fault is not None:
                    on_fault(self.fault)
                    if self.debugger is not None:
                        self.debugger.halt(SIGSEGV)
        finally:
            if self.debugger is not None:
                self.debugger.close()
        return self.fault

    def _step_time(self, stop: threading.Event) -> None:
        """Service what is due, take an exception if one preempts, then sleep or run a slice."""
        self.held_back()
        now = self.now()
        for p in self.timed:
            due = p.due()
            if due is not None and due <= now:
                p.service(now)
        if self._reset_why is not None:
            return
        exc = self._preempting()
        if exc is not None:
            self.sleeping = False
            self._enter(exc)
        elif self.sleeping:
            self._sleep(self._next_due(), stop)
            return
        if self.fault is None:
            self._slice(now)

    def held_back(self) -> None:
        """Core time stands still while the host holds an awake core back: the run-clock time this
        thread spent off the CPU since the last look (descheduled, or waiting for the GIL), beyond
        ``STALL_NS``, is taken from core time, which then trails the run clock by it until the
        core catches up at its next wake-ups. So a stall delays the firmware's work (its frames go
        on the wire at their core time, their lateness measured as the bus's send error) but never
        moves its timers past events it had not yet taken (a 1 kHz tick is not lost). A core
        behind by more than ``MAX_LAG_NS`` skips ahead, the skip counted as its lateness."""
        run, cpu = now_ns(), time.thread_time_ns()
        if self._awake is not None:
            off = (run - self._awake[0]) - (cpu - self._awake[1])
            if off > STALL_NS:  # (a core ahead of the run clock holds at its floor all the same)
                self.offset -= off
                if self.offset < -MAX_LAG_NS:
                    self.can1.late(-MAX_LAG_NS - self.offset)
                    self.offset = -MAX_LAG_NS
        self._awake = (run, cpu)

    def _halted(self, stop: threading.Event) -> None:
        self._awake = None  # halted by a debugger: core time runs on, as before
        if self.debugger is not None:
            self.debugger.serve(stop)
            if self._reset_why is not None and self.fault is None:
                self._system_reset()
        else:
            stop.wait(POLL_S)

    # -- what the debugger calls on the core's thread --------------------------------------------

    def step(self) -> None:
        """Execute one instruction (or enter the exception that preempts it)."""
        if self.fault is not None:
            return
        exc = self._preempting()
        if exc is not None:
            self._enter(exc)
            return
        if not self._execute(1):
            return
        if self._intr is not None:
            self._exception(self._intr)
        elif self._replay is not None:
            self._finish_store()

    def read_memory(self, address: int, length: int) -> bytes | None:
        """Memory as the debugger sees it (peripheral registers read as the core would)."""
        assert self.uc is not None  # a debugger reads a running machine
        try:
            return bytes(self.uc.mem_read(address, length))
        except UcError:
            pass
        out = bytearray()
        for a in range(address, address + length):
            if P.PERIPH_START <= a < P.PERIPH_END:
                out.append(self._periph_read(self.uc, a - P.PERIPH_START, 1, None))
            elif P.PPB_START <= a < P.PPB_START + P.PPB_SIZE:
                out.append(self._ppb_read(self.uc, a - P.PPB_START, 1, None))
            else:
                return None
        return bytes(out)

    def write_memory(self, address: int, data: bytes) -> bool:
        """RAM only: flash is programmed through its interface or a bootloader, as on the board."""
        if not self._in_ram(address, len(data)):
            return False
        assert self.uc is not None  # a debugger writes a running machine
        self.uc.mem_write(address, data)
        return True

    def reset(self, why: str) -> None:
        """System reset now (the debugger's ``monitor reset``); a fault is cleared by it."""
        self.fault = None
        self._reset_why = (why, False)
        self._system_reset()

    def flash_changed_all(self) -> None:
        ctypes.memmove(self._flash_mem, self.flash.image_area(), self.part.flash_size)

    def _reset(self) -> None:
        """Reset: a fresh core (RAM keeps its contents, as SRAM does), peripherals to reset values,
        SP and PC from the vector table at address 0 (flash: BOOT0 is low)."""
        uc = self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        flash = ctypes.addressof(self._flash_mem)
        rx = U.UC_PROT_READ | U.UC_PROT_EXEC
        uc.mem_map_ptr(0, self.part.flash_size, rx, flash)
        uc.mem_map_ptr(self.part.flash_start, self.part.flash_size, rx, flash)
        uc.mem_map_ptr(P.RAM_START, self.part.ram_size, U.UC_PROT_ALL, ctypes.addressof(self._ram))
        self._system_memory()
        uc.mem_map_ptr(SYSTEM_MEMORY, 0x1000, U.UC_PROT_READ, ctypes.addressof(self._system))
        uc.mmio_map(P.PERIPH_START, P.PERIPH_END - P.PERIPH_START, self._periph_read, None, self._periph_write, None)
        uc.mmio_map(P.PPB_START, P.PPB_SIZE, self._ppb_read, None, self._ppb_write, None)
        uc.hook_add(UC_HOOK_INTR, self._on_intr)
        uc.hook_add(UC_HOOK_MEM_INVALID, self._on_invalid)
        for after in unmasking_sites(self._flash_mem.raw):
            uc.hook_add(UC_HOOK_CODE, self._on_unmasked, begin=self.part.flash_start + after,
                        end=self.part.flash_start + after)
        for p, _ in self.peripherals.values():
            p.reset()
        self.scs.reset()
        sp, pc = struct.unpack_from("<II", self._flash_mem.raw, 0)
        uc.reg_write(UC_ARM_REG_MSP, sp)
        uc.reg_write(UC_ARM_REG_PC, pc & ~1)
        uc.reg_write(UC_ARM_REG_XPSR, 0x0100_0000)
        self.sleeping = False
        self._replay = None
        self._reset_why = None
        if self.debugger is not None:
            self.debugger.attach(uc)

    def _system_memory(self) -> None:
        """Flash size (KiB) and the unique device ID where RM0008 §30 puts them; option bytes erased
        but for RDP's key."""
        block = bytearray(b"\xff" * 0x1000)
        block[0x7E0:0x7E2] = (self.part.flash_size // 1024).to_bytes(2, "little")
        block[0x7E8:0x7F4] = UID
        block[0x800:0x802] = b"\xa5\x5a"
        ctypes.memmove(self._system, bytes(block), len(block))

    def _system_reset(self) -> None:
        assert self._reset_why is not None  # a reset was requested (_step_time)
        why, watchdog = self._reset_why
        self.rcc.reset_cause(IWDG_RESET if watchdog else SOFTWARE_RESET)
        self.diagnostic(f"reset: {why}")
        self._reset()

    # -- time ------------------------------------------------------------------------------------

    def _next_due(self) -> int | None:
        first = None
        for p in self.timed:
            due = p.due()
            if due is not None and (first is None or due < first):
                first = due
        return first

    def _sleep(self, until: int | None, stop: threading.Event) -> None:
        """WFI: until the next event at core time ``until`` (woken the lead early), an input, or a
        reset request. The core wakes at the time of what woke it: an event at its due time, a
        frame at its end of frame (so its interrupt is taken when it arrived, however late the
        host delivered it), within ``MAX_LAG_NS`` behind and the lead ahead of the run clock. An
        input after the event waits for it (see ``_inputs``)."""
        if self._planned is not None:  # back in WFI after a timer event: how long the host took
            self._learn(now_ns() - self._planned)
            self._planned = None
        self.wake.clear()
        asleep = self.now()
        lead = self.lead_ns
        first = self._first_input(until)
        self._awake = None  # asleep: the time it waits is no stall
        if first is None and self._reset_why is None and not stop.is_set():
            left = POLL_S if until is None else min(POLL_S, (until - lead - now_ns()) / 1e9)
            if left > 0:
                self.wake.wait(left)
            first = self._first_input(until)
        if first is not None:
            self._wake_at(asleep, first)
        elif until is not None and now_ns() >= until - lead:
            self._planned = until - lead
            self._wake_at(asleep, until)

    def _first_input(self, until: int | None) -> int | None:
        """The time of the earliest input waiting, unless the event at ``until`` comes first."""
        if not self.inbox:
            return None
        first = min((self._input_time(kind, item) for kind, item in list(self.inbox)
                     if kind != "can" or not _quiet(item)), default=None)
        return first if first is not None and (until is None or first < until) else None

    def _wake_at(self, asleep: int, target: int) -> None:
        run = now_ns()
        if target < run - MAX_LAG_NS:  # skipped ahead: what was due in between is taken that late
            self.can1.late(run - MAX_LAG_NS - target)
        self.floor = max(asleep, min(max(target, run - MAX_LAG_NS), run + self.lead_ns))
        self.offset = min(0, self.floor - run)
        self._awake = (run, time.thread_time_ns())  # from here, a stall holds core time back

    def _learn(self, handled_ns: int) -> None:
        """One timer event handled ``handled_ns`` after its planned wake-up; set the lead again
        every ``LEARN_EVERY`` events (see the module's docstring). At most half a 1 kHz period: a
        frame that ends within the lead before a timer event is taken up to the lead late."""
        recent = self._handled
        recent.append(handled_ns)
        self._events += 1
        if self._events % LEARN_EVERY == 0:
            ordered = sorted(recent)
            p99 = ordered[(len(ordered) - 1) * 99 // 100]
            self.lead_ns = max(MIN_LEAD_NS, min(MAX_LEAD_NS, p99 + p99 // 4))

    def _input_time(self, kind: str, item: Any) -> int:
        """When an input happened: a frame's end of frame, a fault's time; typed bytes now."""
        if kind == "can":
            return frame_ns(item)
        return item[2] if kind == "fault" else self.now()

    def _slice(self, now: int) -> None:
        hclk = self.rcc.hclk
        budget = MASKED_SLICE_NS if self.nvic.highest_pending() is not None else SLICE_NS
        due = self._next_due()
        if due is not None:
            budget = min(budget, max(due - now, 0))
        count = max(1, budget * hclk // 1_000_000_000)
        if not self._execute(count):
            return
        uc = self.uc
        assert uc is not None  # made by _reset before the first slice
        if self._intr is not None:  # first, also when a client halted the core meanwhile (an exception
            self._exception(self._intr)  # return left undone would resume at EXC_RETURN's address)
            return
        if self.debugger is not None and self.debugger.halted:
            return  # a breakpoint, or a client that attached
        if self._reset_why is not None:
            return
        if self._replay is not None:
            self._finish_store()
            return
        if self._half_word_before(PC_SET.read(uc)[0]) in (WFI, WFE):
            self.sleeping = True
            return
        self._pace(now, count * 1_000_000_000 // hclk)

    def _half_word_before(self, pc: int) -> int:
        """The half-word before ``pc`` (WFI, if that stopped the core)."""
        return self._code(HALF, pc - 2) if pc >= 2 else 0

    def _code(self, form: struct.Struct, address: int) -> int:
        """A value at ``address``: from flash's own buffer when it is there (no call into unicorn,
        which costs more: this is read at every slice and exception entry), else from the core's
        memory (UcError when nothing is mapped there)."""
        at = address - self.part.flash_start if self._is_flash(address) else address
        if 0 <= at <= self.part.flash_size - form.size:  # flash, or its alias at 0
            return form.unpack_from(self._flash_mem, at)[0]
        assert self.uc is not None  # the running machine's
        return form.unpack(self.uc.mem_read(address, form.size))[0]

    def _finish_store(self) -> None:
        """Complete the store the machine stopped in (its repeat dropped) before anything else."""
        while self._replay is not None and self.fault is None and self._execute(1):
            pass

    def _execute(self, count: int) -> bool:
        """Up to ``count`` instructions from PC; False when one faulted (handled already)."""
        self._intr = None
        assert self.uc is not None  # made by _reset before the first slice
        try:
            self.uc.emu_start(PC_SET.read(self.uc)[0] | 1, 0xFFFF_FFFF, count=count)
        except UcError as exc:
            self._memory_error(exc)
            return False
        return True

    def _pace(self, start: int, core_ns: int) -> None:
        """A slice that ran all its instructions: the core never runs faster than HCLK. It may get
        up to ``PACE_SLACK_NS`` ahead before it sleeps (sleeping for every slice would make the
        host's wake-up latency the speed limit); what a slower host could not give is counted."""
        self.paced = max(self.paced, start) + core_ns
        ahead = self.paced - self.now()
        if ahead > PACE_SLACK_NS and not self.inbox:
            self.wake.clear()
            self.wake.wait(ahead / 1e9)
            self._awake = None  # waited on purpose: no stall
        elif ahead < 0:
            self.stolen_ns -= ahead
            self.paced -= ahead

    def _inputs(self) -> None:
        """Inputs into the peripherals, in order; never at a core time before the input happened (a
        core trailing the run clock catches up to it). After a frame the controller accepted, the
        rest wait: the core takes that one first, as it would have before the next arrived (a
        host that stalled must not overrun the receive FIFO with frames that came apart). A frame
        the controller accepted after its end of frame, because core time had run past it, is
        counted as the machine's lateness. An input after a timer event still due waits for it: a
        core trailing the run clock takes its events in order, never skipping one for an input;
        so does our own frame's echo until core time reaches it (it moves core time on never)."""
        while self.inbox:
            kind, item = self.inbox[0]
            late = 0
            if kind != "uart":
                at, now = self._input_time(kind, item), self.now()
                if at > now and ((kind == "can" and _quiet(item)) or (
                        (due := self._next_due()) is not None and due <= at)):
                    return
            self.inbox.popleft()
            if kind != "uart":
                if at > now:
                    self.offset = max(self.offset, min(0, at - now_ns()))
                    self.floor = max(self.floor, at)
                late = now - at
            if kind == "can":
                if self.can1.frame(item):
                    self.can1.late(late)
                    return
            elif kind == "fault":
                self.can1.fault_event(*item)
            else:
                self.usart1.receive(item)

    # -- exceptions ------------------------------------------------------------------------------

    def _masks(self) -> tuple[int, int, int]:
        """PRIMASK, FAULTMASK, BASEPRI."""
        assert self.uc is not None  # read by the running machine
        primask, faultmask, basepri = MASK_SET.read(self.uc)
        return primask, faultmask, basepri

    def _write(self, *pairs: tuple[int, int]) -> None:
        """Registers written in the order given (the SP banking depends on it), in one call."""
        ids = tuple(reg for reg, _ in pairs)
        regs = self._register_sets.get(ids)
        if regs is None:
            regs = self._register_sets[ids] = RegisterSet(ids)
        assert self.uc is not None  # written by the running machine
        regs.write(self.uc, [value for _, value in pairs])

    def _preempting(self) -> int | None:
        """The exception to take now; an exception waiting for a mask wakes a sleeping core."""
        nvic = self.nvic
        nvic.changed = False
        if not nvic.pending:
            return None
        primask, faultmask, basepri = self._masks()
        exc = nvic.preempting(primask, faultmask, basepri)
        if exc is None and self.sleeping and nvic.preempting(0, faultmask, basepri) is not None:
            self.sleeping = False  # WFI wakes on an interrupt PRIMASK holds back
        return exc

    def _enter(self, exc: int, frame_pc: int | None = None) -> None:
        """Exception entry: stack the frame on the current stack, switch to handler mode on MSP."""
        assert self.uc is not None  # taken by the running machine
        values = ENTRY_SET.read(self.uc)
        control, ipsr, sp = values[8:]
        values = values[:8]
        if frame_pc is not None:
            values[6] = frame_pc
        psp = not ipsr and control & 2
        frame = sp - 32
        if frame & 4:
            frame -= 4
            values[7] |= 1 << 9
        if not self._in_ram(frame, 32):
            self._stop(faults.stack_overflow(self, exc, frame))
            return
        self.uc.mem_write(frame, FRAME.pack(*values))
        stack = [(UC_ARM_REG_PSP, frame), (UC_ARM_REG_CONTROL, control & ~2)] if psp else [(UC_ARM_REG_SP, frame)]
        lr = 0xFFFF_FFF1 if ipsr else 0xFFFF_FFFD if psp else 0xFFFF_FFF9
        self._vector(exc, values[7], *stack, (UC_ARM_REG_LR, lr))

    def _vector(self, exc: int, xpsr: int, *writes: tuple[int, int]) -> None:
        """Handler mode for ``exc`` at its vector (a null or endless-loop vector is unhandled),
        after ``writes`` (the stack pointer and LR of the entry)."""
        try:
            vector = self._code(WORD, self.scs.vtor + 4 * exc)
            first = self._code(HALF, vector & ~1) if vector else None
        except UcError:
            vector, first = 0, None
        if first is None or first == LOOP or not vector & 1:
            self._write(*writes)
            self._stop(faults.unhandled(self, exc, vector, first == LOOP))
            return
        self._write(*writes, (UC_ARM_REG_XPSR, xpsr & 0xF800_0000 | 0x0100_0000 | exc), (UC_ARM_REG_PC, vector & ~1))
        self.nvic.activate(exc)

    def _return(self, exc_return: int) -> None:
        """Exception return: deactivate, tail-chain into a pending exception or unstack."""
        uc = self.uc
        assert uc is not None  # the running machine's
        active, xpsr, psp_now, msp_now, control, primask, faultmask, basepri = RETURN_SET.read(uc)
        if not active or exc_return not in EXC_RETURNS:
            self._fault(USAGEFAULT, faults.INVPC, detail=f"EXC_RETURN {exc_return:#010x} "
                        f"{'in thread mode' if not active else 'is not a valid return value'}")
            return
        self.nvic.deactivate(active)
        to_thread, psp = EXC_RETURNS[exc_return]
        nxt = self.nvic.preempting(primask, faultmask, basepri)
        if nxt is not None:  # tail-chain: the frame stays, the next handler runs at once
            self._vector(nxt, xpsr, (UC_ARM_REG_LR, exc_return))
            return
        frame = psp_now if psp else msp_now
        if not self._in_ram(frame, 32):
            self._stop(faults.stack_overflow(self, active, frame, unstacking=True))
            return
        values = list(FRAME.unpack(uc.mem_read(frame, 32)))
        sp = frame + 32 + (4 if values[7] & 1 << 9 else 0)
        mode = [(UC_ARM_REG_XPSR, values[7] & ~(1 << 9))]
        if psp:  # back in thread mode first, then onto the process stack
            mode.append((UC_ARM_REG_CONTROL, control | 2))
        self._write(*mode, (UC_ARM_REG_SP, sp), *zip(STACKED[:6], values[:6]), (UC_ARM_REG_PC, values[6] & ~1))
        if to_thread != (values[7] & 0x1FF == 0):
            self._fault(USAGEFAULT, faults.INVPC, detail="the stacked xPSR does not match EXC_RETURN")

    def _exception(self, intno: int) -> None:
        """unicorn stopped on an exception it does not model."""
        uc = self.uc
        assert uc is not None  # the running machine's
        pc = PC_SET.read(uc)[0]
        if intno == INTR_EXCEPTION_EXIT:
            self._return(pc | 1)
        elif intno == INTR_SWI:
            nvic = self.nvic
            if nvic.group(nvic.priority[SVCALL]) >= nvic.execution_priority(*self._masks()):
                self._fault(HARDFAULT, 0, forced=True, detail="SVC where SVCall cannot preempt")
            else:
                nvic.pend(SVCALL)
        elif intno == INTR_BKPT:
            if self.debugger is not None and self.debugger.breakpoint(pc):
                return
            self._fault(HARDFAULT, 0, debug=True, detail="BKPT with no debugger attached")
        elif intno == INTR_UDEF:
            self._fault(USAGEFAULT, faults.UNDEFINSTR, detail="undefined instruction")
        else:
            self._fault(HARDFAULT, 0, detail=f"CPU exception {intno}")

    def _memory_error(self, exc: UcError) -> None:
        bad, self._bad_access = self._bad_access, None
        uc = self.uc
        assert uc is not None  # the running machine's
        if exc.errno in (U.UC_ERR_INSN_INVALID,):
            self._fault(USAGEFAULT, faults.UNDEFINSTR, detail="undefined instruction")
            return
        if bad is None:
            self._fault(HARDFAULT, 0, detail=f"emulation error: {exc}")
            return
        access, address, size, value = bad
        if access == U.UC_MEM_WRITE_PROT and self.flash_if.programming and self._is_flash(address):
            self.flash_if.program(address, size, value)  # the store programmed flash: step past it
            pc = PC_SET.read(uc)[0]
            first = struct.unpack("<H", uc.mem_read(pc, 2))[0]
            uc.reg_write(UC_ARM_REG_PC, pc + (4 if first >> 11 in (0x1D, 0x1E, 0x1F) else 2))
            return
        if access in (U.UC_MEM_FETCH_UNMAPPED, U.UC_MEM_FETCH_PROT):
            self._fault(BUSFAULT, faults.IBUSERR, detail=f"instruction fetch from {address:#010x}")
            return
        sp = uc.reg_read(UC_ARM_REG_SP)
        if P.RAM_START - 0x1000 <= address < P.RAM_START and sp <= address + 64:
            self._stop(faults.stack_overflow(self, None, address))
            return
        what = "write to" if access in (U.UC_MEM_WRITE_UNMAPPED, U.UC_MEM_WRITE_PROT) else "read from"
        self._fault(BUSFAULT, faults.PRECISERR | faults.BFARVALID, bfar=address,
                    detail=f"{size}-byte {what} {address:#010x}")

    def _fault(self, exc: int, cfsr: int, *, bfar: int | None = None, forced: bool = False, debug: bool = False,
               detail: str = "") -> None:
        """A synchronous fault: set the status registers as the silicon would (escalating to
        HardFault when the fault is disabled or cannot preempt), then stop with the report."""
        scs = self.scs
        scs.cfsr |= cfsr
        if bfar is not None:
            scs.bfar = bfar
        if exc != HARDFAULT:
            masks = self._masks()
            enabled = self.nvic.enabled[exc]
            prio = self.nvic.group(self.nvic.priority[exc])
            if not enabled or prio >= self.nvic.execution_priority(*masks):
                forced = True
        if forced:
            scs.hfsr |= 1 << 30
        if debug:
            scs.hfsr |= 1 << 31
        taken = HARDFAULT if forced or debug or exc == HARDFAULT else exc
        self._stop(faults.report(self, taken, exc, detail))

    def _stop(self, fault: faults.Fault) -> None:
        self.fault = fault

    # -- memory ----------------------------------------------------------------------------------

    def _in_ram(self, address: int, length: int) -> bool:
        return P.RAM_START <= address and address + length <= P.RAM_START + self.part.ram_size

    def _is_flash(self, address: int) -> bool:
        return self.part.flash_start <= address < self.part.flash_start + self.part.flash_size

    def _on_unmasked(self, uc: Uc, address: int, size: int, _: Any) -> None:
        """Just after an instruction that may have lowered PRIMASK, FAULTMASK or BASEPRI."""
        if self.nvic.pending and self._preempting() is not None:
            uc.emu_stop()  # before the next instruction: the exception is taken first, as on silicon

    def _on_intr(self, uc: Uc, intno: int, _: Any) -> None:
        self._intr = intno
        uc.emu_stop()

    def _on_invalid(self, uc: Uc, access: int, address: int, size: int, value: int, _: Any) -> bool:
        self._bad_access = (access, address, size, value)
        return False

    def _periph_read(self, uc: Uc, offset: int, size: int, _: Any) -> int:
        address = P.PERIPH_START + offset
        entry = self.peripherals.get(address & ~0x3FF)
        if entry is None or not self._clocked(*entry):
            return 0
        word = entry[0].read(address - entry[0].base & ~3)
        return word >> 8 * (address & 3) & (1 << 8 * size) - 1

    def _periph_write(self, uc: Uc, offset: int, size: int, value: int, _: Any) -> None:
        address = P.PERIPH_START + offset
        if self._replayed(uc, address, value):
            return
        entry = self.peripherals.get(address & ~0x3FF)
        if entry is None or not self._clocked(*entry):
            return
        shift = 8 * (address & 3)
        entry[0].write(address - entry[0].base & ~3, value << shift, (1 << 8 * size) - 1 << shift)
        self._after_write(uc, address, value)

    def _ppb_read(self, uc: Uc, offset: int, size: int, _: Any) -> int:
        return self.scs.read(offset & ~3) >> 8 * (offset & 3) & (1 << 8 * size) - 1

    def _ppb_write(self, uc: Uc, offset: int, size: int, value: int, _: Any) -> None:
        address = P.PPB_START + offset
        if self._replayed(uc, address, value):
            return
        shift = 8 * (offset & 3)
        self.scs.write(offset & ~3, value << shift, (1 << 8 * size) - 1 << shift)
        self._after_write(uc, address, value)

    def _clocked(self, peripheral: Peripheral, clock: tuple[int, int] | None) -> bool:
        if clock is None or self.rcc.clocked(*clock):
            return True
        if peripheral.name not in self._unclocked:
            self._unclocked.add(peripheral.name)
            self.diagnostic(f"{peripheral.name} accessed with its clock off in RCC: ignored, as on silicon")
        return False

    def _after_write(self, uc: Uc, address: int, value: int) -> None:
        """Stop inside the store when it made an exception take effect or asked for a reset."""
        if self._reset_why is None and not (self.nvic.changed and self._preempting() is not None):
            return
        self._replay = (PC_SET.read(uc)[0], address, value)
        uc.emu_stop()

    def _replayed(self, uc: Uc, address: int, value: int) -> bool:
        """True for the repeat of the store the machine stopped in (unicorn executes it again)."""
        if self._replay is None:
            return False
        replay, self._replay = self._replay, None
        return replay == (PC_SET.read(uc)[0], address, value)
