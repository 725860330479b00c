"""Benchmark: sustained recording into MCAP with zero loss, and loader speed.

* **recorder, direct** — frames handed to :class:`hil.recording.Recorder` as fast as one thread can
  (the writer path: JSON encoding, MCAP chunks, zstd, periodic flush).
* **recorder, from simbus** — four sender processes keep four emulated 1 Mbit/s buses saturated
  (the wire model paces them, as real buses would: ~18k frames/s each); one recorder listens on all
  four like in a run. Loss = sent − recorded; the rate is frames over the time from the first send
  to the last frame written.
* **anchor: python-can Logger (.blf)** — python-can's BLF writer taking the same frames, in the same
  run.
* **loader** — :func:`hil.recording.load` of the direct recording into numpy columns.

Goal: ≥ 100,000 frames/s sustained into MCAP with 0 loss.

    python benchmarks/recorder.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import can

from hil.buses import RigBuses
from hil.recording import Recorder, load
from hil.spec.rig import Rig

GOAL_FPS = 100_000
BUSES = ["can1", "can2", "can3", "can4"]
RIG = Rig.model_validate({"name": "bench", "buses": {b: {"kind": "can", "emulated": True, "bitrate": 1_000_000}
                                                     for b in BUSES}})
SENDER = """
import json, sys, time, can
cfg = json.loads(sys.argv[1]); n = int(sys.argv[2])
with can.Bus(**cfg) as bus:
    print(time.monotonic_ns(), flush=True)
    for i in range(n):
        bus.send(can.Message(arbitration_id=0x100 + i % 64, data=i.to_bytes(8, "little"), is_extended_id=False))
"""


def direct(path: Path, n: int) -> dict:
    payloads = [i.to_bytes(8, "little") for i in range(1024)]
    t = time.perf_counter()
    with Recorder(path) as rec:
        for i in range(n):
            rec.frame("chassis", i * 1000, 0x100 + i % 64, 0, payloads[i % 1024])
    elapsed = time.perf_counter() - t
    return {"frames": n, "seconds": elapsed, "frames_per_s": n / elapsed, "bytes": path.stat().st_size}


def python_can_blf(path: Path, n: int) -> dict:
    msgs = [can.Message(timestamp=i * 1e-6, arbitration_id=0x100 + i % 64, data=(i % 1024).to_bytes(8, "little"),
                        is_extended_id=False, channel=1) for i in range(min(n, 100_000))]
    t = time.perf_counter()
    writer = can.Logger(path)
    for i in range(n):
        writer.on_message_received(msgs[i % len(msgs)])
    writer.stop()
    elapsed = time.perf_counter() - t
    return {"frames": n, "seconds": elapsed, "frames_per_s": n / elapsed, "bytes": path.stat().st_size}


def from_simbus(tmp: Path, n: int) -> dict:
    """``n`` frames per bus from one sender process per bus, recorded by one recorder."""
    with RigBuses(RIG, tmp / "run") as buses:
        path = tmp / "bus.mcap"
        with Recorder(path, buses, BUSES) as rec:
            senders = [subprocess.Popen([sys.executable, "-c", SENDER, json.dumps(buses.can_config(b)), str(n)],
                                        stdout=subprocess.PIPE, text=True) for b in BUSES]
            first_send = min(int(p.stdout.readline()) for p in senders)
            for p in senders:
                p.communicate(timeout=600)
            give_up = time.monotonic() + 60
            while sum(rec.counts.values()) < n * len(BUSES) and time.monotonic() < give_up:
                time.sleep(0.001)
            elapsed = (time.monotonic_ns() - first_send) / 1e9
        overruns = sum(buses.stats(b)["overruns"] for b in BUSES)
    loaded = load(path)
    recorded = sum(len(loaded.frames(b)) for b in BUSES)
    sent = n * len(BUSES)
    return {"buses": len(BUSES), "frames_sent": sent, "frames_recorded": recorded, "lost": sent - recorded,
            "broker_overruns": overruns, "seconds": elapsed, "frames_per_s": recorded / elapsed}


def loader(path: Path) -> dict:
    t = time.perf_counter()
    n = len(load(path).frames("chassis"))
    elapsed = time.perf_counter() - t
    return {"frames": n, "seconds": elapsed, "frames_per_s": n / elapsed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10x fewer frames")
    ap.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = ap.parse_args()
    n_direct, n_bus = (100_000, 5_000) if args.quick else (1_000_000, 100_000)
    with tempfile.TemporaryDirectory(prefix="hil-bench-") as tmp:
        tmp = Path(tmp)
        result = {"quick": args.quick, "goal_frames_per_s": GOAL_FPS,
                  "recorder_direct": direct(tmp / "direct.mcap", n_direct),
                  "python_can_blf": python_can_blf(tmp / "anchor.blf", n_direct),
                  "loader": loader(tmp / "direct.mcap"),
                  "recorder_from_simbus": from_simbus(tmp, n_bus)}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    d, a, ld, b = (result[k] for k in ("recorder_direct", "python_can_blf", "loader", "recorder_from_simbus"))
    print(f"recorder, direct:          {d['frames_per_s']:>12,.0f} frames/s  ({d['frames']:,} frames, "
          f"{d['bytes'] / d['frames']:.1f} B/frame)   goal ≥ {GOAL_FPS:,}")
    print(f"python-can Logger (.blf):  {a['frames_per_s']:>12,.0f} frames/s  ({a['bytes'] / a['frames']:.1f} B/frame)")
    print(f"loader → numpy columns:    {ld['frames_per_s']:>12,.0f} frames/s  ({ld['seconds']:.2f} s)")
    print(f"recorder, from simbus:     {b['frames_per_s']:>12,.0f} frames/s  {b['buses']} saturated buses, sent "
          f"{b['frames_sent']:,}, recorded {b['frames_recorded']:,}, lost {b['lost']}")


if __name__ == "__main__":
    main()
