"""Faults stop the core with a report: the exception taken and why, the faulting PC with its
symbol, the registers and the fault status registers."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("which, kind, headline, symbol, cfsr", [
    (1, "HardFault", "HardFault (forced from BusFault): 4-byte read from 0x60000000", "read_nowhere",
     "PRECISERR BFARVALID"),
    (2, "BusFault", "BusFault: 4-byte read from 0x60000000", "read_nowhere", "PRECISERR BFARVALID"),
    (3, "HardFault", "HardFault (forced from UsageFault): undefined instruction", "main", "UNDEFINSTR"),
    (6, "HardFault", "HardFault: BKPT with no debugger attached", "main", ""),
])
def test_a_fault_stops_the_core_with_its_pc_symbol_and_status(run_image, programs, which, kind, headline, symbol,
                                                              cfsr):
    run = run_image(programs / "faults.elf", {"fault": which})
    fault = run.wait_fault()
    assert fault.kind == kind
    assert fault.summary.startswith(f"{headline} at pc {fault.pc:#010x} <{symbol}")
    assert fault.symbol.split("+")[0] == symbol
    assert fault.lines[0] == f"fault: {fault.summary}"
    assert any(line.startswith("  CFSR 0x") and cfsr in line for line in fault.lines)
    assert fault.lines[-1] == "fault: core stopped; it stays halted until reset"
    assert run.text.startswith(f"faults: {which}")


def test_an_interrupt_without_a_handler_is_reported_unhandled(run_image, programs):
    fault = run_image(programs / "faults.elf", {"fault": 4}).wait_fault()
    assert fault.kind == "unhandled interrupt"
    assert fault.summary.startswith("unhandled interrupt: IRQ 5 (its handler 0x")
    assert "<default_handler> is an endless loop)" in fault.summary


def test_a_stack_overflow_is_reported_as_one(run_image, programs):
    fault = run_image(programs / "faults.elf", {"fault": 5}).wait_fault()
    assert fault.kind == "stack overflow"
    assert fault.summary.startswith("stack overflow: access at 0x1ffff")  # just below RAM
    assert "<recurse" in fault.summary


def test_the_brake_ecus_faulting_build_is_reported_with_its_pc_and_symbol(run_image, brake_build):
    import can

    class Bus:  # a request delivered as the bus would; the machine only sends and receives here
        def send(self, msg):
            pass

    run = run_image(brake_build / "brake_ecu_fault.elf", can_bus=Bus())
    run.wait_for(r"brake: ready")
    run.machine.receive(can.Message(arbitration_id=0x110, is_extended_id=False, data=bytes(8)))
    fault = run.wait_fault()
    assert fault.summary.startswith("HardFault (forced from BusFault): 4-byte write to 0x50000000 at pc ")
    assert fault.symbol.startswith("brake_on_request")
