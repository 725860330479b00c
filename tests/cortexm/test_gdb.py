"""gdb-multiarch attaches to an emulated MCU over the GDB remote protocol on 127.0.0.1: registers,
memory, breakpoints, stepping, a backtrace through an exception frame; Ctrl-C halts a running core;
a faulted core is inspectable."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess

import can
import pytest


def gdb(port: int, elf, *commands: str) -> str:
    if shutil.which("gdb-multiarch") is None:
        pytest.skip("gdb-multiarch is not installed (.ci/run installs it)")
    argv = ["gdb-multiarch", "-batch", "-nx", "-ex", f"target remote 127.0.0.1:{port}"]
    for command in commands:
        argv += ["-ex", command]
    r = subprocess.run([*argv, str(elf)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_gdb_sets_a_breakpoint_steps_and_reads_memory(run_image, brake_build):
    run = run_image(brake_build / "brake_ecu.elf", gdb=True)
    run.wait_for(r"brake: ready")
    port = run.machine.debugger.port
    assert f"hil: gdb server on 127.0.0.1:{port} (target remote 127.0.0.1:{port})" in run.diagnostics
    out = gdb(port, brake_build / "brake_ecu.elf", "break systick_handler", "continue", "bt", "print ecu.ticks",
              "stepi", "info registers pc", "x/xw 0x08000004", "continue", "print ecu.ticks", "delete", "detach")
    assert "Breakpoint 1, systick_handler ()" in out
    assert re.search(r"#1  <signal handler called>\n#2  .* in (wfi|main) ", out)  # unwound through EXC_RETURN
    first, second = (int(v) for v in re.findall(r"^\$\d+ = (\d+)$", out, re.M))
    assert second == first + 1
    assert re.search(r"^pc\s+0x[0-9a-f]+\s+0x[0-9a-f]+ <systick_handler\+\d+>$", out, re.M)
    reset = run.machine.uc.mem_read(0x0800_0004, 4)
    assert f"0x8000004 <vectors+4>:\t0x{int.from_bytes(reset, 'little'):08x}" in out
    assert "[Inferior 1 (Remote target) detached]" in out
    ticks = run.machine.uc.mem_read(0x2000_0800, 4)  # the core runs on after detaching
    run.wait_for(r"brake: ready")
    assert not run.faults and ticks is not None


def test_ctrl_c_halts_a_running_core(run_image, brake_build):
    run = run_image(brake_build / "brake_ecu.elf", gdb=True)
    run.wait_for(r"brake: ready")
    with socket.create_connection(("127.0.0.1", run.machine.debugger.port), timeout=30) as s:
        f = s.makefile("rwb", buffering=0)

        def packet(body: bytes) -> bytes:
            f.write(b"$" + body + b"#" + f"{sum(body) & 0xFF:02x}".encode())
            assert f.read(1) == b"+"
            return reply()

        def reply() -> bytes:
            data = b""
            while not data.endswith(b"#"):
                data += f.read(1)
            f.read(2)
            f.write(b"+")
            return data[data.index(b"$") + 1:-1]

        assert packet(b"?") == b"S05"  # halted on attach
        f.write(b"$c#63")
        assert f.read(1) == b"+"
        f.write(b"\x03")
        assert reply() == b"S02"
        assert len(packet(b"g")) == 17 * 8
        assert packet(b"D") == b"OK"


def test_a_faulted_core_is_inspected_with_gdb(run_image, brake_build):
    class Bus:
        def send(self, msg):
            pass

    run = run_image(brake_build / "brake_ecu_fault.elf", can_bus=Bus(), gdb=True)
    run.wait_for(r"brake: ready")
    run.machine.receive(can.Message(arbitration_id=0x110, is_extended_id=False, data=bytes(8)))
    fault = run.wait_fault()
    out = gdb(run.machine.debugger.port, brake_build / "brake_ecu_fault.elf", "info registers pc", "bt 1")
    assert "Program received signal SIGSEGV" in out or re.search(r"^pc\s+0x", out, re.M)
    assert re.search(rf"^pc\s+{fault.pc:#x}\s+{fault.pc:#x} <brake_on_request\+\d+>$", out, re.M)
