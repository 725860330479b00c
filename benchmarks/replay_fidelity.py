"""Benchmark: the real-bus replay path — 20,000 frames at 8 kHz, measured by an independent sink.

The injector's sleep-and-spin path (what it does on a real bus) and the anchor, python-can's
``can.MessageSync`` + ``bus.send`` (as ``can.player`` does), send through the same python-can bus
class (``udp_sink.py``): each frame is a UDP datagram to 127.0.0.1, where a separate sink process
reads them. The kernel stamps each datagram as it arrives (``SO_TIMESTAMPNS``; on loopback
that is inside the sender's ``send``), so when the sink process gets to read does not matter: the
measurement costs the senders nothing and is not the Python broker's. The injector finds the bus
class as any python-can interface, through an entry point (``can.interface``) in a folder put on
its ``PYTHONPATH``.

Lateness is the kernel's arrival stamp (mapped onto the run clock) minus the planned send time:
the injector's (its start + the frame's time − its modelled end-of-frame offset), or for
MessageSync its start + the frame's log offset (it sends a frame due within 100 µs at once: early).
Meanwhile a bystander process sleeps to 1 kHz deadlines and measures how late it wakes: whether the
sender starves the other processes of the host (on 2 CPUs, those the replay feeds). Goals: 0 early; p99 at least 5× better than MessageSync.

    python benchmarks/replay_fidelity.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import can
import numpy as np

from udp_sink import INTERFACE, Sink, SinkBus, plugin_path

BITRATE = 1_000_000
RATE_HZ = 8_000


# ---- the bystander (a child process of this script) ----------------------------------------------

def bystander(seconds: float) -> None:
    """Sleep to 1 kHz absolute deadlines for ``seconds``; print how late each wake-up was (ns)."""
    late, start = [], time.monotonic_ns() + 1_000_000
    for k in range(int(seconds * 1000)):
        deadline = start + k * 1_000_000
        if (left := deadline - time.monotonic_ns()) > 0:
            time.sleep(left / 1e9)
        late.append(time.monotonic_ns() - deadline)
    print(json.dumps(late))


class Round:
    """One sender measured: the sink and the bystander run around it."""

    def __init__(self, seconds: float):
        self.sink = Sink()
        self.channel = self.sink.channel
        self.bystander = subprocess.Popen([sys.executable, __file__, "--bystander", str(seconds)],
                                          stdout=subprocess.PIPE, text=True)

    def finish(self) -> tuple[dict[int, int], list[int]]:
        """Frame number → arrival (run clock) of every frame the sink got; the bystander's lateness."""
        arrivals = {int.from_bytes(data[:2], "little"): t for t, _, data in self.sink.finish()}
        return arrivals, json.loads(self.bystander.communicate(timeout=60)[0])


# ---- the senders -------------------------------------------------------------------------------

def write_stimulus(path: Path, n: int) -> list[can.Message]:
    msgs = [can.Message(timestamp=i / RATE_HZ, arbitration_id=0x100 + i % 16, data=(i % 65536).to_bytes(2, "little"),
                        is_extended_id=False, channel="can0") for i in range(n)]
    path.write_text("".join(f"({m.timestamp:.6f}) can0 {m.arbitration_id:03X}#{bytes(m.data).hex().upper()}\n"
                            for m in msgs))
    return msgs


def run_hil(stim: Path, n: int, seconds: float) -> dict:
    """The injector process, sleep-and-spin path, onto a real (non-emulated) bus: the sink."""
    from hil.buses import RigBuses
    from hil.simbus.wire import WireModel
    from hil.spec.rig import Rig
    from hil.spec.suite import Stimulus
    from hil.stimulus.injector import play
    from hil.stimulus.timeline import build_timeline

    r = Round(seconds)
    rig = Rig.model_validate({"name": "bench", "buses": {"can0": {"kind": "can", "interface": INTERFACE,
                                                                  "channel": r.channel, "bitrate": BITRATE}}})
    timeline = build_timeline(Stimulus.model_validate({"sources": [{"file": str(stim)}]}), rig)
    with tempfile.TemporaryDirectory(prefix="hil-bench-run-") as run:
        with RigBuses(rig, Path(run)) as buses:
            report = play(timeline, buses)
    arrivals, bystander = r.finish()
    model = WireModel(BITRATE)
    planned = {int.from_bytes(s.event.data[:2], "little"): report.start_ns + s.t_ns
               - model.timing(s.event.id, s.event.flags, len(s.event.data), s.event.data)[1] for s in timeline.steps}
    return {**figures(arrivals, planned, n, bystander), "injector": report.host.get("wake"),
            "pm_qos": report.host.get("cpu_dma_latency")}


def run_python_can(msgs: list[can.Message], seconds: float) -> dict:
    """The anchor: MessageSync paces, bus.send sends, in this process."""
    r = Round(seconds)
    bus = SinkBus(r.channel)
    try:
        start = time.monotonic_ns()  # MessageSync plans from when its iteration starts (perf_counter: the same clock)
        for msg in can.MessageSync(msgs, timestamps=True):
            bus.send(msg)
    finally:
        bus.shutdown()
    arrivals, bystander = r.finish()
    t0 = msgs[0].timestamp
    planned = {i % 65536: start + round((m.timestamp - t0) * 1e9) for i, m in enumerate(msgs)}
    return figures(arrivals, planned, len(msgs), bystander)


def figures(arrivals: dict[int, int], planned: dict[int, int], n: int, bystander: list[int]) -> dict:
    late = np.array([arrivals[c] - planned[c] for c in planned if c in arrivals])
    woke = np.array(bystander)
    return {"frames": len(late), "lost": n - len(late), "p50_us": float(np.percentile(late, 50)) / 1e3,
            "p99_us": float(np.percentile(late, 99)) / 1e3, "p99.9_us": float(np.percentile(late, 99.9)) / 1e3,
            "max_us": float(late.max()) / 1e3, "early": int((late < 0).sum()),
            "bystander_wake_p50_us": float(np.percentile(woke, 50)) / 1e3,
            "bystander_wake_p99_us": float(np.percentile(woke, 99)) / 1e3}


def idle_bystander(seconds: float) -> dict:
    """The bystander with no sender: the host's own wake-up lateness, for reference."""
    woke = np.array(json.loads(subprocess.run([sys.executable, __file__, "--bystander", str(seconds)],
                                              capture_output=True, text=True, check=True).stdout))
    return {"wake_p50_us": float(np.percentile(woke, 50)) / 1e3, "wake_p99_us": float(np.percentile(woke, 99)) / 1e3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2,000 frames instead of 20,000")
    ap.add_argument("--json", action="store_true", help="print JSON instead of text")
    ap.add_argument("--bystander", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bystander is not None:
        return bystander(args.bystander)
    n = 2_000 if args.quick else 20_000
    seconds = n / RATE_HZ
    with tempfile.TemporaryDirectory(prefix="hil-bench-") as tmp:
        stim = Path(tmp) / "stim.log"
        msgs = write_stimulus(stim, n)
        (Path(tmp) / "plugin").mkdir()
        os.environ["PYTHONPATH"] = plugin_path(Path(tmp) / "plugin")  # the injector process inherits it
        idle = idle_bystander(seconds)
        hil = run_hil(stim, n, seconds + 1.0)
        anchor = run_python_can(msgs, seconds)
    ratio = anchor["p99_us"] / hil["p99_us"] if hil["p99_us"] > 0 else float("inf")
    result = {"frames": n, "rate_hz": RATE_HZ, "quick": args.quick, "load": list(os.getloadavg()), "idle": idle,
              "hil_spin": hil, "python_can_messagesync": anchor, "p99_ratio_python_can_over_hil": ratio,
              "goals": {"early": 0, "p99_ratio": 5}}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"real-bus replay path: {n:,} frames at {RATE_HZ / 1000:g} kHz into a UDP sink stamped by the kernel "
          f"(load {os.getloadavg()[0]:.2f}; bystander wakes {idle['wake_p50_us']:.0f} / {idle['wake_p99_us']:.0f} µs "
          "p50 / p99 late with no sender)")
    print(f"{'':30} {'p50 µs':>9} {'p99 µs':>9} {'p99.9 µs':>9} {'max µs':>9} {'early':>6} {'lost':>5} "
          f"{'bystander p99 µs':>17}")
    for name, f in (("hil (sleep + learned spin)", hil), ("python-can MessageSync+send", anchor)):
        print(f"{name:30} {f['p50_us']:9.1f} {f['p99_us']:9.1f} {f['p99.9_us']:9.1f} {f['max_us']:9.1f} "
              f"{f['early']:6d} {f['lost']:5d} {f['bystander_wake_p99_us']:17.1f}")
    wake = hil["injector"] or {}
    print(f"p99 python-can / hil: {ratio:,.1f}× (goal ≥ 5×); injector: spun {wake.get('spinning', 0):.0%} of the time "
          f"(stretch {wake.get('spin_us', 0):.0f} µs at the end), CPU {wake.get('cpu', 0):.0%}")


if __name__ == "__main__":
    main()
