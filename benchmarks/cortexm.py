"""Emulated STM32F103 figures, each next to its anchor in the same run:

(a) compute: a counted busy loop (4 instructions a turn, 8 M instructions) at HCLK 72 MHz, in
    emulated instructions per host second (goal ≥ 20 MIPS; the core is paced to HCLK, so 72 is
    the ceiling); anchor: the same loop on bare unicorn, unpaced;
(b) idle: host CPU of a core asleep in WFI (goal ≤ 2 % of a core), and of the C brake ECU at 1 kHz;
(c) period: the C brake ECU's status frame at 1 kHz (status_period 1ms) on an emulated bus, the
    ECU in its own MCU process (``python -m hil.firmware``) as a bench runs it: period error on the
    bus (end-of-frame stamps) and missed periods — slots of the 1 ms grid with no frame, so a frame
    late by less than half a period is error, not a miss (goal p99 ≤ 200 µs, none missed in 60 s);
    beside them the ticks the firmware itself skipped (gaps in the frame's counter), how late each
    frame really reached a listening node after its end-of-frame stamp (arrival lateness: a frame
    a held-back core wrote is stamped at its core time, but reaches the nodes when it came), the
    delivery harness error the ECU's node reported (its machine's own lateness included) and the
    broker's send error on the bus (how late it read frames against their stamps); anchor:
    the Python firmware runtime sending a frame from its 1 kHz tick (in this process);
(d) flashing: a 64 KiB image through the emulated part's AN3155 bootloader over a 115200 baud
    emulated UART, with Debian's stm32flash (write and verify) against the time its bytes take
    on the wire (goal ≤ 1.2 ×); anchor: hil's own stm32-uart client.

Needs arm-none-eabi-gcc (it builds the firmware) and stm32flash.

    python benchmarks/cortexm.py [--quick] [--json] [--only compute,idle,period,flash]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import can

from hil.buses import RigBuses
from hil.clock import frame_ns, now_ns
from hil.cortexm import config as cortexm_config
from hil.cortexm.core import Machine
from hil.cortexm.elf import flash_bytes
from hil.cortexm.part import PART
from hil.firmware.flashmem import FlashMemory, SystemMemory, unique_id
from hil.firmware.mcu import McuConfig
from hil.harness import ErrorHistogram
from hil.spec.rig import Rig

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("compute", "idle", "period", "flash")
FLASH_IMAGE = 64 * 1024
BAUD = 115_200


def build(out: Path) -> None:
    for folder in (ROOT / "firmware_stubs" / "brake_ecu_c", ROOT / "tests" / "cortexm" / "firmware"):
        subprocess.run(["make", "-s", "-C", str(folder), f"OUT={out}"], check=True)


def start(folder: Path, elf: Path, config: dict | None = None, can_bus=None) -> tuple[Machine, bytearray, threading.Event,
                                                                                  threading.Thread]:
    flash = FlashMemory(folder / f"{elf.stem}-{time.monotonic_ns()}.bin", PART.device)
    flash.program(PART.flash_start, cortexm_config.apply(
        flash_bytes(elf.read_bytes(), PART.flash_start, PART.flash_size), config or {}))
    console = bytearray()
    machine = Machine(flash, console=console.extend, console_baud=BAUD, can_bus=can_bus,
                      can_bitrate=500_000 if can_bus is not None else None)
    stop = threading.Event()
    thread = threading.Thread(target=machine.run, args=(stop,), daemon=True)
    thread.start()
    return machine, console, stop, thread


def wait_console(console: bytearray, pattern: str, timeout_s: float = 120) -> re.Match:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        m = re.search(pattern, console.decode(errors="replace"))
        if m:
            return m
        time.sleep(0.01)
    raise RuntimeError(f"no {pattern!r} on the console: {console.decode(errors='replace')!r}")


# ---- (a) compute ---------------------------------------------------------------------------------

def compute(folder: Path) -> dict:
    machine, console, stop, thread = start(folder, folder / "timing.elf")
    busy_us = int(wait_console(console, r"busy loop (\d+)00 us\r\n").group(1)) * 100
    stop.set()
    thread.join()
    return {"instructions": 8_000_000, "core_seconds": busy_us / 1e6, "mips": round(8.0 / (busy_us / 1e6), 1),
            "ceiling_mips": 72, "anchor_bare_unicorn_mips": round(bare_unicorn_mips(), 1)}


def bare_unicorn_mips() -> float:
    """The same 4-instruction loop on unicorn alone: no pacing, no peripherals."""
    from unicorn import UC_ARCH_ARM, UC_MODE_MCLASS, UC_MODE_THUMB, Uc

    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
    uc.mem_map(0x0800_0000, 0x1000)
    # ldr r0, =2000000; loop: subs r0, #1; nop; nop; bne loop; b .
    uc.mem_write(0x0800_0000, bytes.fromhex("0248" "0138" "00bf" "00bf" "fbd1" "fee7" "80841e00"))
    t = time.perf_counter()
    uc.emu_start(0x0800_0001, 0x0800_000A)
    return 8.0 / (time.perf_counter() - t)


# ---- (b) idle ------------------------------------------------------------------------------------

def idle(folder: Path, seconds: float) -> dict:
    out = {}
    for name, elf, config, ready in (("wfi_idle", folder / "exceptions.elf", None, r"exceptions: \S+\r\n"),
                                     ("brake_ecu_1khz", folder / "brake_ecu.elf", None, r"brake: ready")):
        machine, console, stop, thread = start(folder, elf, config)
        wait_console(console, ready)
        time.sleep(0.2)
        cpu, wall = time.process_time(), time.monotonic()
        time.sleep(seconds)
        share = (time.process_time() - cpu) / (time.monotonic() - wall)
        stop.set()
        thread.join()
        out[name] = {"host_core_share_pct": round(100 * share, 2)}
    out["goal_wfi_idle_pct"] = 2.0
    return out


# ---- (c) period ----------------------------------------------------------------------------------

def period(folder: Path, seconds: float) -> dict:
    rig = Rig.model_validate({"name": "bench", "buses": {"chassis": {"kind": "can", "emulated": True,
                                                                      "bitrate": 500_000}}})
    flash = FlashMemory(folder / "period.flash", PART.device)
    flash.program(PART.flash_start, cortexm_config.apply(flash_bytes(
        (folder / "brake_ecu.elf").read_bytes(), PART.flash_start, PART.flash_size), {"status_period": "1ms"}))
    with RigBuses(rig, folder / "period") as buses:
        listener = buses.open_can("chassis", hold=False)  # stamps only: the bus's delivery error is the ECU's
        config = McuConfig(name="brake", flash_path=str(flash.path), work_dir=str(folder),
                           can={"chassis": buses.can_config("chassis")}, gdb_port=None)
        (folder / "mcu.json").write_text(config.to_json())
        ecu = subprocess.Popen([sys.executable, "-P", "-m", "hil.firmware", str(folder / "mcu.json")],
                               stdout=subprocess.PIPE, text=True)
        try:
            for line in ecu.stdout:
                if "brake: ready" in line:
                    break
            cpu, wall = process_cpu_s(ecu.pid), time.monotonic()
            c_ecu = frame_periods(listener, 0x112, seconds, counter=True)
            c_ecu["host_core_share_pct"] = round(100 * (process_cpu_s(ecu.pid) - cpu) / (time.monotonic() - wall), 1)
        finally:
            ecu.terminate()
            ecu.wait(30)
        harness = buses.stats("chassis")["harness"]
        c_ecu["delivery_harness_us"] = harness_us(harness["delivery"])
        c_ecu["send_harness_us"] = harness_us(harness["send"])
        anchor = python_runtime_periods(buses, listener, seconds)
        listener.shutdown()
    return {"c_brake_ecu_status_1khz": c_ecu, "anchor_python_runtime_1khz": anchor,
            "goal": {"p99_error_us": 200, "missed": 0}}


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used: what it costs the host, whatever the
    load (the period figures follow the load; this does not)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def harness_us(histogram: dict) -> dict:
    h = ErrorHistogram.from_json(histogram)
    us = lambda ns: None if ns is None else round(ns / 1e3, 1)  # noqa: E731
    return {"count": h.count, "p50": us(h.quantile(0.5)), "p99": us(h.quantile(0.99)),
            "max": us(h.max_ns if h.count else None)}


def python_runtime_periods(buses: RigBuses, listener: can.BusABC, seconds: float) -> dict:
    """The Python firmware runtime: a frame from its 1 kHz tick, as a stub would send it."""
    from hil.firmware.runtime import Mcu

    bus = buses.open_can("chassis")
    mcu = Mcu("anchor", bus, print, {}, tick_hz=1000)
    msg = can.Message(arbitration_id=0x112, is_extended_id=False, data=bytes(8))
    mcu.on_tick(lambda deadline: mcu.send(msg))
    stop = threading.Event()
    thread = threading.Thread(target=mcu.run, args=(stop,), daemon=True)
    thread.start()
    try:
        return frame_periods(listener, 0x112, seconds)
    finally:
        stop.set()
        thread.join()
        bus.shutdown()


def frame_periods(bus: can.BusABC, can_id: int, seconds: float, nominal_us: float = 1000.0,
                  counter: bool = False) -> dict:
    """Period error of frame ``can_id`` on the bus (end-of-frame stamps) after a 1 s warm-up; missed:
    slots of the nominal grid (through the median frame) that no frame fell in; with ``counter``,
    skipped: gaps in the 4-bit counter in the first byte's low nibble (the firmware sent nothing)."""
    while bus.recv(0) is not None:
        pass
    frames = []
    end = time.monotonic() + 1.0 + seconds
    while time.monotonic() < end:
        msg = bus.recv(0.1)
        if msg is not None and msg.arbitration_id == can_id:
            frames.append((frame_ns(msg) / 1e9, msg.data[0] & 15, now_ns() - frame_ns(msg)))
    frames = [f for f in frames if f[0] >= frames[0][0] + 1.0]
    stamps = [t for t, _, _ in frames]
    late = sorted(max(0, arrived) for _, _, arrived in frames)
    periods = [(b - a) * 1e6 for a, b in zip(stamps, stamps[1:])]
    errors = sorted(abs(p - nominal_us) for p in periods)
    pick = lambda q: round(errors[min(len(errors) - 1, int(q * len(errors)))], 1)  # noqa: E731
    phases = sorted(((t - stamps[0]) * 1e6 / nominal_us + 0.5) % 1 - 0.5 for t in stamps)
    phase = phases[len(phases) // 2]  # the grid through most frames, not through the first one
    slots = {round((t - stamps[0]) * 1e6 / nominal_us - phase) for t in stamps}
    return {"frames": len(stamps), "p50_error_us": pick(0.5), "p99_error_us": pick(0.99),
            "max_error_us": round(errors[-1], 1), "missed": max(slots) + 1 - len(slots),
            "over_1.5_periods": sum(p > 1.5 * nominal_us for p in periods),
            "arrival_late_us": {"p50": round(late[len(late) // 2] / 1e3, 1), "p99": round(late[len(late) * 99 // 100] / 1e3, 1),
                                "max": round(late[-1] / 1e3, 1), "over_200us": sum(ns > 200_000 for ns in late)},
            **({"skipped": sum((b - a - 1) % 16 for (_, a, _), (_, b, _) in zip(frames, frames[1:]))} if counter else {})}


# ---- (d) flashing --------------------------------------------------------------------------------

def flashing(folder: Path) -> dict:
    from hil.firmware.bootloader import Bootloader, Stopped
    from hil.protocol import an3155, stm32

    image = folder / "image.bin"
    image.write_bytes(os.urandom(FLASH_IMAGE))
    rig = Rig.model_validate({"name": "bench", "buses": {"uart": {"kind": "serial", "emulated": True,
                                                                   "baudrate": BAUD}}})
    out = {}
    with RigBuses(rig, folder / "flash") as buses:
        for name in ("stm32flash", "anchor_hil_stm32_uart"):
            memory = FlashMemory(folder / f"{name}.flash", PART.device)
            device = an3155.open_uart(buses.serial_port("uart", side="device"), BAUD, 0.1)
            stop = threading.Event()

            def serve():
                try:
                    Bootloader(device, SystemMemory(memory, unique_id(name)), stop).serve()
                except Stopped:
                    pass

            server = threading.Thread(target=serve, daemon=True)
            server.start()
            host = buses.serial_port("uart")
            t = time.monotonic()
            if name == "stm32flash":
                subprocess.run(["stm32flash", "-m", "8n1", "-b", str(BAUD), "-w", str(image), "-v", host],
                               check=True, capture_output=True, timeout=600)
            else:
                with stm32.open_port(host, BAUD) as port:
                    stm32.flash(port, image.read_bytes())
            seconds = time.monotonic() - t
            stop.set()
            server.join(5)
            device.close()
            assert memory.read(PART.flash_start, FLASH_IMAGE) == image.read_bytes(), name
            out[name] = {"seconds": round(seconds, 2)}
    wire = wire_seconds(FLASH_IMAGE)
    out["wire_seconds_at_baud"] = round(wire, 2)
    out["stm32flash"]["ratio_to_wire"] = round(out["stm32flash"]["seconds"] / wire, 3)
    out["goal_ratio"] = 1.2
    return out


def wire_seconds(size: int) -> float:
    """The time AN3155's bytes for writing and reading back ``size`` bytes in 256-byte blocks take
    at the baud rate (10 bits a byte): Write Memory and Read Memory, both directions, plus erase."""
    blocks = -(-size // 256)
    write = 2 + 1 + 5 + 1 + (1 + 256 + 1) + 1  # command+ACK, address+ACK, N+data+checksum, ACK
    read = 2 + 1 + 5 + 1 + 2 + 1 + 256  # command+ACK, address+ACK, N+complement, ACK, data
    erase = 2 + 1 + 2 + 2 * (size // 2048) + 1 + 1
    return (blocks * (write + read) + erase + 2) * 10 / BAUD


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a few seconds per part (checks the benchmark runs)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--period-seconds", type=float, metavar="S", help="length of each period run (default 60)")
    ap.add_argument("--only", metavar="PARTS", default=",".join(PARTS), help=f"comma-separated: {', '.join(PARTS)}")
    args = ap.parse_args()
    parts = args.only.split(",")
    if not set(parts) <= set(PARTS):
        ap.error(f"--only: expected some of {', '.join(PARTS)}, got {args.only!r}")
    results: dict = {"host_load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="hil-bench-") as tmp:
        folder = Path(tmp)
        build(folder)
        if "compute" in parts:
            results["compute"] = compute(folder)
        if "idle" in parts:
            results["idle"] = idle(folder, 2.0 if args.quick else 10.0)
        if "period" in parts:
            results["period"] = period(folder, args.period_seconds or (3.0 if args.quick else 60.0))
        if "flash" in parts:
            results["flash"] = flashing(folder)
    results["host_load_1min"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2) if args.json else _text(results))


def _text(r: dict) -> str:
    lines = []
    if "compute" in r:
        c = r["compute"]
        lines.append(f"(a) compute: {c['mips']} MIPS paced at HCLK 72 MHz (goal ≥ 20); bare unicorn "
                     f"{c['anchor_bare_unicorn_mips']} MIPS")
    if "idle" in r:
        i = r["idle"]
        lines.append(f"(b) idle in WFI: {i['wfi_idle']['host_core_share_pct']} % of a core (goal ≤ 2); "
                     f"brake ECU at 1 kHz: {i['brake_ecu_1khz']['host_core_share_pct']} %")
    if "period" in r:
        for name in ("c_brake_ecu_status_1khz", "anchor_python_runtime_1khz"):
            p = r["period"][name]
            lines.append(f"(c) {name}: {p['frames']} frames, period error p50 {p['p50_error_us']} µs, p99 "
                         f"{p['p99_error_us']} µs, max {p['max_error_us']} µs, missed {p['missed']} (periods over "
                         f"1.5 ms {p['over_1.5_periods']}, ticks skipped {p.get('skipped', '-')})"
                         + (f", {p['host_core_share_pct']} % of a host core" if "host_core_share_pct" in p else ""))
        c = r["period"]["c_brake_ecu_status_1khz"]
        lines.append(f"    C ECU frames' arrival lateness (µs): {c['arrival_late_us']}; its node's delivery harness "
                     f"error (µs): {c['delivery_harness_us']}; the bus's send error (µs): {c['send_harness_us']}")
    if "flash" in r:
        f = r["flash"]
        lines.append(f"(d) 64 KiB: stm32flash {f['stm32flash']['seconds']} s = {f['stm32flash']['ratio_to_wire']} × "
                     f"the {f['wire_seconds_at_baud']} s on the wire (goal ≤ 1.2); hil stm32-uart "
                     f"{f['anchor_hil_stm32_uart']['seconds']} s")
    lines.append(f"host load (1 min): {r['host_load_1min']:.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
