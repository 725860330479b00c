"""bxCAN (RM0008 §24): the STM32F1's CAN controller, a node on an emulated bus.

Modes (initialisation, normal, sleep; loop-back and silent), three transmit mailboxes, two
three-deep receive FIFOs with overrun (locked or overwriting), the 14 filter banks (16/32-bit,
mask/list, FIFO assignment, filter match index), the four interrupt lines, and error handling:
transmit and receive error counters, error warning / passive, bus-off with automatic or
software-requested recovery after 128 × 11 recessive bits.

The controller sends one frame at a time, as the silicon does: the highest-priority pending
mailbox (lowest identifier, or request order with TXFP) goes to the bus, and the mailbox completes
(RQCP, TXOK, TME) at the frame's end of frame, core time, as the wire model gives it from its
release — or at the bus's echo of it if that comes first. Waiting for the echo alone made every
frame cost a host round trip (broker, receive thread, core), which a 1 kHz task's three mailboxes
did not cover on a busy host. The bus still decides: a frame the bus delivers as an error frame
(a ``corrupt`` fault) is a transmit error (TEC + 8, retransmitted unless NART); a ``bus_off``
window leaves it unacknowledged (TEC + 8 until error passive, retransmitted a frame time later);
a ``drop`` counts as sent. If that news comes after the mailbox completed, the error is counted
then and the controller sends its copy of the frame again before any mailbox (a frame that lost
arbitration ends later than modelled: its mailbox completed that much early). Received error
frames raise REC. Bit timing is checked against the bus: a BTR that gives another bit rate is
reported on the console (a board would only see errors).
"""

from __future__ import annotations

from collections import deque

import can

from hil.clock import now_ns
from hil.cortexm.mmio import Peripheral, w1c
from hil.cortexm.part import CAN1_RX0_IRQ, CAN1_RX1_IRQ, CAN1_SCE_IRQ, CAN1_TX_IRQ
from hil.simbus.protocol import F_EXTENDED, F_REMOTE
from hil.simbus.wire import WireModel

MCR, MSR, TSR, RF0R, RF1R, IER, ESR, BTR = range(0, 0x20, 4)
TX_BOX, RX_BOX = 0x180, 0x1B0
FMR, FM1R, FS1R, FFA1R, FA1R = 0x200, 0x204, 0x20C, 0x214, 0x21C
FILTERS, BANKS = 0x240, 14
INRQ, SLEEP, TXFP, RFLM, NART, ABOM = 1, 2, 4, 8, 16, 64
INAK, SLAK, ERRI = 1, 2, 4
TXRQ = 1
EWGF, EPVF, BOFF = 1, 2, 4
LEC_BIT_DOMINANT, LEC_CRC = 5, 6
NS = 1_000_000_000
UNCONFIRMED = 32  # frames completed at their modelled end whose echo is still to come (older ones: lost)


class Mailbox:
    def __init__(self) -> None:
        self.ir = self.dtr = self.dlr = self.dhr = 0

    @property
    def extended(self) -> bool:
        return bool(self.ir & 4)

    @property
    def can_id(self) -> int:
        return self.ir >> 3 if self.extended else self.ir >> 21

    def message(self) -> can.Message:
        dlc = min(self.dtr & 15, 8)
        data = (self.dlr | self.dhr << 32).to_bytes(8, "little")[:dlc]
        return can.Message(arbitration_id=self.can_id, is_extended_id=self.extended,
                           is_remote_frame=bool(self.ir & 2), dlc=dlc, data=b"" if self.ir & 2 else data)

    def load(self, msg: can.Message, fmi: int) -> None:
        self.ir = (msg.arbitration_id << 3 | 4 if msg.is_extended_id else msg.arbitration_id << 21) | (
            2 if msg.is_remote_frame else 0)
        self.dtr = min(msg.dlc, 8) | fmi << 8
        data = bytes(msg.data).ljust(8, b"\0")
        self.dlr, self.dhr = int.from_bytes(data[:4], "little"), int.from_bytes(data[4:8], "little")


class BxCan(Peripheral):
    def __init__(self, machine, base: int, bus: can.BusABC | None, bitrate: int | None):
        self.bus = bus
        self.bitrate = bitrate
        super().__init__(machine, base, "CAN1")

    def reset(self) -> None:
        self.mcr = 0x0001_0002
        self.msr = 0x0000_0C02
        self.tsr = 0x1C00_0000
        self.rfr = [0, 0]
        self.ier = 0
        self.esr = 0
        self.btr = 0x0123_0000
        self.tx = [Mailbox() for _ in range(3)]
        self.fifo: list[deque[Mailbox]] = [deque(), deque()]
        self.fmr, self.fm1r, self.fs1r, self.ffa1r, self.fa1r = 0x2A1C0E01, 0, 0, 0, 0
        self.fr = [[0, 0] for _ in range(BANKS)]
        self.order: list[int] = []  # mailboxes in request order
        self.in_flight: tuple[int | None, can.Message] | None = None  # mailbox (None: a resend), frame
        self.eof_at: int | None = None  # core time the frame in flight ends, if it wins the bus when released
        self.unconfirmed: deque[can.Message] = deque(maxlen=UNCONFIRMED)  # completed, the bus's echo to come
        self.resend: deque[can.Message] = deque()  # completed frames the bus then refused: sent again first
        self.wire = WireModel(self.bitrate or 500_000)
        self.retry_at: int | None = None
        self.recover_at: int | None = None  # bus-off recovery done at this run-clock ns
        self.tec = self.rec = 0
        self.lec = 0
        self.warned = False

    # -- state -----------------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """Taking part in bus traffic: out of initialisation and sleep, not bus-off."""
        return not self.msr & (INAK | SLAK) and not self.esr & BOFF

    def _bit_ns(self) -> int:
        return NS // (self.bitrate or 500_000)

    def _check_timing(self) -> None:
        if self.warned or not self.bitrate:
            return
        tq = 1 + (self.btr >> 16 & 15) + 1 + (self.btr >> 20 & 7) + 1
        rate = self.machine.rcc.pclk1 / ((self.btr & 0x3FF) + 1) / tq
        if abs(rate - self.bitrate) > 0.005 * self.bitrate:
            self.warned = True
            self.machine.diagnostic(f"can1: BTR {self.btr:#010x} at PCLK1 {self.machine.rcc.pclk1 / 1e6:g} MHz gives "
                                    f"{rate:.0f} bit/s, the bus runs at {self.bitrate}: a board would see only errors")

    # -- from the bus (the core thread, in order) ------------------------------------------------

    def frame(self, msg: can.Message) -> bool:
        """A frame the bus delivered: another node's, or the echo of our own. True when it went
        into a receive FIFO."""
        if not msg.is_rx:
            self._echo(msg)
            return False
        if not self.active or self.btr & (1 << 30):  # loop-back ignores the bus
            return False
        if msg.is_error_frame:
            self._error(rx=True, lec=LEC_CRC)
            return False
        if self.rec:
            self.rec = 120 if self.rec > 127 else self.rec - 1
        accepted = self._receive(msg)
        self._flags()
        return accepted

    def fault_event(self, kind: str, can_id: int, t_ns: int) -> None:
        """A fault the bus injected on our frame in flight: lost (``drop``) or unacknowledged."""
        if kind not in ("drop", "bus_off"):
            return
        retry_at = t_ns + 130 * self._bit_ns()  # after the ACK error
        if (done := self._confirmed(can_id)) is not None:  # older than the frame in flight: its news first
            if kind == "bus_off":
                self._refused(done, lec=3, retry_at=retry_at)
        elif self.in_flight is not None and self.in_flight[1].arbitration_id == can_id:
            if kind == "drop":
                self._complete(ok=True)
            else:
                self._error(rx=False, lec=3, retry_at=retry_at)

    def _echo(self, msg: can.Message) -> None:
        if (done := self._confirmed(msg.arbitration_id)) is not None:  # older than the frame in flight
            if msg.is_error_frame:
                self._refused(done, lec=LEC_BIT_DOMINANT)
            else:
                self._sent()
        elif self.in_flight is not None and msg.arbitration_id == self.in_flight[1].arbitration_id:
            if msg.is_error_frame:
                self._error(rx=False, lec=LEC_BIT_DOMINANT)
            else:
                self._sent()
                self._complete(ok=True)

    def _sent(self) -> None:
        if self.tec:
            self.tec -= 1

    def _confirmed(self, can_id: int) -> can.Message | None:
        """The oldest frame completed at its modelled end with identifier ``can_id``, now that the
        bus has told of it (None: none is waiting for that news)."""
        for msg in self.unconfirmed:
            if msg.arbitration_id == can_id:
                self.unconfirmed.remove(msg)
                return msg
        return None

    def _refused(self, msg: can.Message, lec: int, retry_at: int | None = None) -> None:
        """The bus refused a frame whose mailbox had completed: the error counts now, and unless
        NART the controller sends its copy again, before any mailbox."""
        if not self.mcr & NART:
            self.resend.append(msg)
        self._error(rx=False, lec=lec, retry_at=retry_at, completed=True)

    def _error(self, rx: bool, lec: int, retry_at: int | None = None, completed: bool = False) -> None:
        """A receive or transmit error; ``completed``: of a frame whose mailbox completed already
        (the frame in flight, if any, is another one and goes on)."""
        self.lec = lec
        self.msr |= ERRI
        if rx:
            self.rec = min(self.rec + 1, 255)
        elif not (lec == 3 and self.tec >= 128):  # ACK errors stop counting once error passive
            self.tec += 8
        if self.tec > 255:
            self._bus_off()
        elif not rx and not completed and self.mcr & NART:
            self._complete(ok=False)
        elif not rx and (not completed or self.in_flight is None):
            self._land()
            self.retry_at = retry_at
            self._send_next()
        self._flags()

    def _bus_off(self) -> None:
        self.esr |= BOFF
        self._land()  # its mailbox stays pending until the node is back
        self.retry_at = None
        self.machine.diagnostic("can1: bus-off (transmit error counter over 255)")
        if self.mcr & ABOM:
            self.recover_at = self.machine.now() + 128 * 11 * self._bit_ns()

    def _land(self) -> None:
        """No frame in flight any more; a resend that was is sent again first."""
        if self.in_flight is not None and self.in_flight[0] is None:
            self.resend.appendleft(self.in_flight[1])
        self.in_flight = self.eof_at = None

    def _recovered(self) -> None:
        self.esr &= ~BOFF
        self.tec = self.rec = 0
        self.recover_at = None
        self._flags()
        self._send_next()

    def _complete(self, ok: bool) -> None:
        assert self.in_flight is not None  # completes the frame in flight
        box, _ = self.in_flight
        self.in_flight = self.eof_at = None
        if box is not None:  # a resend has no mailbox left to complete
            self.tx[box].ir &= ~TXRQ
            shift = 8 * box
            self.tsr = self.tsr & ~(0xF << shift) | (1 | (2 if ok else 8)) << shift | 1 << (26 + box)
        self._send_next()
        self._flags()

    # -- receive ---------------------------------------------------------------------------------

    def _receive(self, msg: can.Message) -> bool:
        match = self._filter(msg)
        if match is None:
            return False
        fifo, fmi = match
        queue = self.fifo[fifo]
        box = Mailbox()
        box.load(msg, fmi)
        if len(queue) == 3:
            self.rfr[fifo] |= 1 << 4  # FOVR
            if self.mcr & RFLM:
                return False
            queue.pop()  # not locked: the newest message is overwritten
        queue.append(box)
        return True

    def _filter(self, msg: can.Message) -> tuple[int, int] | None:
        """(FIFO, filter match index) of the filter that accepts ``msg``; exact list entries win."""
        can_id, ext, rtr = msg.arbitration_id, msg.is_extended_id, msg.is_remote_frame
        word = (can_id << 3 | 4 if ext else can_id << 21) | (2 if rtr else 0)
        half = ((can_id >> 18 if ext else can_id) << 5 | (16 if rtr else 0) | (8 | can_id >> 15 & 7 if ext else 0))
        numbers = [0, 0]
        best: tuple[tuple[int, int, int], int, int] | None = None  # (rank, fifo, fmi)
        for bank in range(BANKS):
            fifo = self.ffa1r >> bank & 1
            wide, listed = self.fs1r >> bank & 1, self.fm1r >> bank & 1
            r1, r2 = self.fr[bank]
            if wide:
                entries = [(r1, None), (r2, None)] if listed else [(r1, r2)]
                value = word
            else:
                pairs = [(r1 & 0xFFFF, r1 >> 16), (r2 & 0xFFFF, r2 >> 16)]
                entries = [(r1 & 0xFFFF, None), (r1 >> 16, None), (r2 & 0xFFFF, None), (r2 >> 16, None)] \
                    if listed else pairs
                value = half
            for ident, mask in entries:
                fmi = numbers[fifo]
                numbers[fifo] += 1
                if not self.fa1r >> bank & 1:
                    continue
                hit = value == ident if mask is None else (value ^ ident) & mask == 0
                if hit:
                    rank = (0 if wide else 1, 0 if mask is None else 1, fmi)
                    if best is None or rank < best[0]:
                        best = (rank, fifo, fmi)
        return None if best is None else (best[1], best[2])

    # -- transmit --------------------------------------------------------------------------------

    def _request(self, box: int) -> None:
        if not self.tsr >> (26 + box) & 1:
            return  # not empty: a request on a pending mailbox is ignored
        self.tsr &= ~(1 << (26 + box))
        self.tsr &= ~(0xF << 8 * box)
        self.order.append(box)
        if self.eof_at is not None and self.eof_at <= self.machine.now():
            self.service(self.machine.now())  # the frame before it ended already (see ``due``)
        self._send_next()

    def _send_next(self) -> None:
        if self.in_flight is not None or not self.active or (self.retry_at and self.retry_at > self.machine.now()):
            return
        pending = [b for b in self.order if self.tx[b].ir & TXRQ]
        self.order = pending
        if self.resend:
            box, msg = None, self.resend.popleft()
        elif pending:
            if not self.mcr & TXFP:
                pending = sorted(pending, key=lambda b: (self.tx[b].can_id << (0 if self.tx[b].extended else 18), b))
            box = pending[0]
            msg = self.tx[box].message()
        else:
            return
        self.retry_at = None
        silent, loopback = self.btr >> 31 & 1, self.btr >> 30 & 1
        if loopback:
            self._receive(msg)
        self.in_flight = (box, msg)
        if silent or self.bus is None:
            self._complete(ok=True)
            return
        self.machine.held_back()  # a stall in the handler before this write delays its core time too
        run = now_ns()
        when, send_written = self.machine.now(run), getattr(self.bus, "send_written", None)
        if send_written is not None:
            # written at its core time: ahead of the run clock the bus releases it then; behind it
            # (the host held the core back) the bus places it then if the wire was free, and its
            # send error says how late the frame really came
            send_written(msg, when)
        else:
            self.bus.send(msg)
            self.late(run - when)  # another bus: the frame leaves after its core time
        # its end in core time, from when the core sent it: a core the host holds back sees its frames
        # end as late as everything else (from when they left, its mailboxes filled while it caught up)
        flags = (F_EXTENDED if msg.is_extended_id else 0) | (F_REMOTE if msg.is_remote_frame else 0)
        self.eof_at = when + self.wire.timing(msg.arbitration_id, flags, msg.dlc, bytes(msg.data))[1]

    def late(self, ns: int) -> None:
        """The machine's own lateness (a frame taken after its end of frame, an event taken after
        its time, a frame sent after its core time on a bus that cannot carry that time): added
        to the node's delivery harness error, so a bench's verdict sees it."""
        harness = getattr(self.bus, "harness", None)
        if ns > 0 and harness is not None:
            harness.add(ns)

    def _abort(self, box: int) -> None:
        if self.tx[box].ir & TXRQ and (self.in_flight is None or self.in_flight[0] != box):
            self.tx[box].ir &= ~TXRQ
            self.tsr = self.tsr & ~(0xF << 8 * box) | 1 << 8 * box | 1 << (26 + box)

    # -- the run clock ---------------------------------------------------------------------------

    def due(self) -> int | None:
        """The next time the controller acts. The frame in flight's end of frame only when something
        follows from it at once (the TX interrupt, another mailbox or a resend to send then): else
        its mailbox completes when next looked at (``read``), and a sleeping core is not woken."""
        eof, flying = self.eof_at, self.in_flight
        if eof is not None and flying is not None and not (self.ier & 1 or self.resend or any(
                self.tx[b].ir & TXRQ for b in self.order if b != flying[0])):
            eof = None
        times = [t for t in (self.retry_at, self.recover_at, eof) if t is not None]
        return min(times) if times else None

    def service(self, now: int) -> None:
        if self.recover_at is not None and now >= self.recover_at:
            self._recovered()
        if self.eof_at is not None and now >= self.eof_at:  # its end of frame: the bus's news comes later
            assert self.in_flight is not None  # an end of frame is the frame in flight's
            self.unconfirmed.append(self.in_flight[1])
            self._complete(ok=True)
        if self.retry_at is not None and now >= self.retry_at:
            self.retry_at = None
            self._send_next()

    # -- registers -------------------------------------------------------------------------------

    def read(self, offset: int) -> int:
        if self.eof_at is not None and self.eof_at <= self.machine.now():
            self.service(self.machine.now())  # a completion not woken for (see ``due``)
        if offset == MCR:
            return self.mcr
        if offset == MSR:
            return self.msr
        if offset == TSR:
            return self.tsr | self._lowest() << 29 | self._code() << 24
        if offset in (RF0R, RF1R):
            fifo = (offset - RF0R) // 4
            n = len(self.fifo[fifo])
            return self.rfr[fifo] | n | (8 if n == 3 else 0)
        if offset == IER:
            return self.ier
        if offset == ESR:
            return self.esr | self.lec << 4 | min(self.tec, 255) << 16 | min(self.rec, 255) << 24
        if offset == BTR:
            return self.btr
        if TX_BOX <= offset < TX_BOX + 0x30:
            box = self.tx[(offset - TX_BOX) // 16]
            return (box.ir, box.dtr, box.dlr, box.dhr)[(offset & 15) // 4]
        if RX_BOX <= offset < RX_BOX + 0x20:
            queue = self.fifo[(offset - RX_BOX) // 16]
            if not queue:
                return 0
            box = queue[0]
            return (box.ir, box.dtr, box.dlr, box.dhr)[(offset & 15) // 4]
        regs = {FMR: self.fmr, FM1R: self.fm1r, FS1R: self.fs1r, FFA1R: self.ffa1r, FA1R: self.fa1r}
        if offset in regs:
            return regs[offset]
        if FILTERS <= offset < FILTERS + 8 * BANKS:
            return self.fr[(offset - FILTERS) // 8][(offset & 7) // 4]
        return 0

    def write(self, offset: int, value: int, mask: int) -> None:
        if offset == MCR:
            self._mcr(value)
        elif offset == MSR:
            self.msr = w1c(self.msr, value, ERRI | 8 | 16)
        elif offset == TSR:
            for box in range(3):
                if value >> (8 * box + 7) & 1:  # ABRQ
                    self._abort(box)
            self.tsr = w1c(self.tsr, value, 0x000F_0F0F)
        elif offset in (RF0R, RF1R):
            fifo = (offset - RF0R) // 4
            self.rfr[fifo] = w1c(self.rfr[fifo], value, 0x18) & 0x10
            if value & 0x20 and self.fifo[fifo]:  # RFOM: release the output mailbox
                self.fifo[fifo].popleft()
        elif offset == IER:
            self.ier = value & 0x3_8F7F
        elif offset == ESR:
            self.lec = value >> 4 & 7
        elif offset == BTR:
            if self.msr & INAK:  # writable in initialisation mode only
                self.btr = value & 0xC37F_03FF
        elif TX_BOX <= offset < TX_BOX + 0x30:
            word = (offset & 15) // 4
            self._mailbox((offset - TX_BOX) // 16, word, value)
            if word:
                return  # identifier, length and data words change no flag
        elif offset == FMR:
            self.fmr = self.fmr & ~1 | value & 1
        elif offset in (FM1R, FS1R, FFA1R, FA1R):
            setattr(self, {FM1R: "fm1r", FS1R: "fs1r", FFA1R: "ffa1r", FA1R: "fa1r"}[offset], value & 0x3FFF)
        elif FILTERS <= offset < FILTERS + 8 * BANKS:
            bank = (offset - FILTERS) // 8
            if self.fmr & 1 or not self.fa1r >> bank & 1:  # FINIT, or the bank is inactive
                self.fr[bank][(offset & 7) // 4] = value
        self._flags()

    def _mcr(self, value: int) -> None:
        if value & 1 << 15:  # RESET: the master reset, back to sleep mode
            self.reset()
            return
        was_init = self.msr & INAK
        self.mcr = value & 0x1_00FF
        self.msr &= ~(INAK | SLAK)
        if value & INRQ:
            self.msr |= INAK
        elif value & SLEEP:
            self.msr |= SLAK
        if was_init and not self.msr & INAK:
            self._check_timing()
            if self.esr & BOFF and self.recover_at is None:  # software recovery: 128 × 11 recessive bits
                self.recover_at = self.machine.now() + 128 * 11 * self._bit_ns()
        self._send_next()

    def _mailbox(self, box: int, word: int, value: int) -> None:
        mb = self.tx[box]
        if not self.tsr >> (26 + box) & 1 and word != 0:
            return  # a pending mailbox is write-protected
        if word == 0:
            if not self.tsr >> (26 + box) & 1:
                return
            mb.ir = value
            if value & TXRQ:
                self._request(box)
        elif word == 1:
            mb.dtr = value & 0xFFFF_010F
        elif word == 2:
            mb.dlr = value
        else:
            mb.dhr = value

    def _lowest(self) -> int:
        empty = [b for b in range(3) if self.tsr >> (26 + b) & 1]
        if len(empty) == 3 or not empty:
            return 0
        pending = [b for b in range(3) if b not in empty]
        low = min(pending, key=lambda b: (self.tx[b].can_id, b))
        return 1 << low

    def _code(self) -> int:
        return next((b for b in range(3) if self.tsr >> (26 + b) & 1), 0)

    def _flags(self) -> None:
        tec, rec = self.tec, self.rec
        esr = self.esr & BOFF
        if tec >= 96 or rec >= 96:
            esr |= EWGF
        if tec > 127 or rec > 127:
            esr |= EPVF
        changed = esr & ~self.esr
        self.esr = esr
        if changed and self.ier & (changed << 8):
            self.msr |= ERRI
        ier, tsr, machine = self.ier, self.tsr, self.machine
        machine.irq(CAN1_TX_IRQ, bool(ier & 1 and tsr & 0x0001_0101))
        for fifo, irq in ((0, CAN1_RX0_IRQ), (1, CAN1_RX1_IRQ)):
            n, shift = len(self.fifo[fifo]), 3 * fifo
            level = (ier >> (1 + shift) & 1 and n) or (ier >> (2 + shift) & 1 and n == 3) or (
                ier >> (3 + shift) & 1 and self.rfr[fifo] & 0x10)
            machine.irq(irq, bool(level))
        error = bool(ier & 1 << 15 and self.msr & ERRI and (
            self.esr & (ier >> 8 & 7) or (ier & 1 << 11 and self.lec)))
        machine.irq(CAN1_SCE_IRQ, error or bool(ier & 1 << 16 and self.msr & 8) or bool(ier & 1 << 17 and self.msr & 16))
