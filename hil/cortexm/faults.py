"""Fault reports: what stopped the core, where, and the registers a fault handler would dump.

A report names the exception taken (HardFault, BusFault, UsageFault, MemManage), what caused it
(decoded CFSR/HFSR bits, the faulting address), the PC with its symbol when the image came with
an ELF, and the core registers at the fault. Unhandled interrupts (a null vector, or a handler
that is an endless ``b .`` loop, as startup code's Default_Handler is) and stack overflows (a
frame or an access below RAM) are reported the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from unicorn.arm_const import (
    UC_ARM_REG_LR, UC_ARM_REG_MSP, UC_ARM_REG_PC, UC_ARM_REG_PSP, UC_ARM_REG_R0, UC_ARM_REG_SP, UC_ARM_REG_XPSR)

from hil.cortexm.scs import exception_name

if TYPE_CHECKING:
    from hil.cortexm.core import Machine

IBUSERR, PRECISERR, BFARVALID = 1 << 8, 1 << 9, 1 << 15
UNDEFINSTR, INVSTATE, INVPC = 1 << 16, 1 << 17, 1 << 18
CFSR_BITS = {0: "IACCVIOL", 1: "DACCVIOL", 3: "MUNSTKERR", 4: "MSTKERR", 7: "MMARVALID", 8: "IBUSERR",
             9: "PRECISERR", 10: "IMPRECISERR", 11: "UNSTKERR", 12: "STKERR", 15: "BFARVALID", 16: "UNDEFINSTR",
             17: "INVSTATE", 18: "INVPC", 19: "NOCP", 24: "UNALIGNED", 25: "DIVBYZERO"}
HFSR_BITS = {1: "VECTTBL", 30: "FORCED", 31: "DEBUGEVT"}
REGS = [UC_ARM_REG_R0 + i for i in range(13)]


@dataclass(frozen=True)
class Fault:
    """Why the core stopped: ``summary`` is one line (with the PC and its symbol), ``lines`` the
    whole report for the console."""

    kind: str
    pc: int
    symbol: str | None
    summary: str
    lines: list[str]


def where(machine: Machine, address: int) -> str:
    name = machine.symbols.name(address) if machine.symbols is not None else None
    return f"{address:#010x} <{name}>" if name else f"{address:#010x}"


def _bits(value: int, names: dict[int, str]) -> str:
    return " ".join(n for b, n in names.items() if value >> b & 1)


def _build(machine: Machine, kind: str, headline: str, pc: int | None = None) -> Fault:
    uc = machine.uc
    assert uc is not None  # a fault is taken by a running machine
    # unicorn 2's Uc has reg_read_batch, which the Uc its type hints name lacks
    regs = uc.reg_read_batch(REGS + [UC_ARM_REG_SP, UC_ARM_REG_LR, UC_ARM_REG_PC,  # type: ignore[attr-defined]
                                     UC_ARM_REG_XPSR, UC_ARM_REG_MSP, UC_ARM_REG_PSP])
    r, (sp, lr, cur_pc, xpsr, msp, psp) = regs[:13], regs[13:]
    pc = cur_pc if pc is None else pc
    scs = machine.scs
    symbol = machine.symbols.name(pc) if machine.symbols is not None else None
    summary = f"{headline} at pc {where(machine, pc)}"
    lines = [f"fault: {summary}"]
    lines += ["  " + "  ".join(f"r{i:<2} {r[i]:#010x}" for i in range(row, min(row + 4, 13))) for row in (0, 4, 8)]
    lines.append(f"  r12 {r[12]:#010x}  sp  {sp:#010x}  lr  {where(machine, lr)}  pc  {pc:#010x}")
    lines.append(f"  xpsr {xpsr:#010x}  msp {msp:#010x}  psp {psp:#010x}")
    cfsr, hfsr = scs.cfsr, scs.hfsr
    lines.append(f"  CFSR {cfsr:#010x} {_bits(cfsr, CFSR_BITS)}".rstrip()
                 + f"  HFSR {hfsr:#010x} {_bits(hfsr, HFSR_BITS)}".rstrip()
                 + f"  MMFAR {scs.mmfar:#010x}  BFAR {scs.bfar:#010x}")
    lines.append("fault: core stopped; it stays halted until reset")
    return Fault(kind, pc, symbol, summary, lines)


def report(machine: Machine, taken: int, cause: int, detail: str) -> Fault:
    """A fault exception: ``taken`` is what the core enters, ``cause`` what raised it."""
    headline = exception_name(taken)
    if cause != taken:
        headline += f" (forced from {exception_name(cause)})"
    if detail:
        headline += f": {detail}"
    return _build(machine, exception_name(taken), headline)


def unhandled(machine: Machine, exc: int, vector: int, loops: bool) -> Fault:
    """An exception whose vector is null or an endless loop (startup code's default handler)."""
    why = f"its handler {where(machine, vector & ~1)} is an endless loop" if loops else (
        f"its vector is {vector:#010x}" if vector else "its vector is null")
    return _build(machine, "unhandled interrupt", f"unhandled interrupt: {exception_name(exc)} ({why})")


def stack_overflow(machine: Machine, exc: int | None, address: int, unstacking: bool = False) -> Fault:
    """The stack ran out of RAM: a frame that does not fit, or an access just below RAM."""
    if exc is None:
        what = f"access at {address:#010x}, below RAM"
    else:
        what = f"{'unstacking' if unstacking else 'stacking'} for {exception_name(exc)} at {address:#010x}, outside RAM"
    return _build(machine, "stack overflow", f"stack overflow: {what}")
