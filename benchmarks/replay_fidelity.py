"""Benchmark: replay fidelity — 20,000 frames at 8 kHz onto an emulated 1 Mbit/s bus.

Side by side in the same run, on the same simbus bus:

* **hil** — the injector process with simbus timed release (the default on emulated buses);
* **hil spin** — the same injector, sleep-and-spin to each deadline then ``bus.send`` (what it does
  on a real bus);
* **python-can** — the anchor: ``can.MessageSync`` + ``bus.send`` in this process, as ``can.player``
  does.

Lateness is the start-of-frame time on the wire (echo end-of-frame time minus the modelled
end-of-frame offset) minus the planned start; the plan starts at hil's chosen start, or for
python-can at its first send. Goals: 0 early; p99 ≤ 100 µs where PM QoS is available; p99 at least
5× better than MessageSync; span error ≤ 0.1 %.

    python benchmarks/replay_fidelity.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import can
import numpy as np

from hil.buses import RigBuses
from hil.clock import from_seconds, now_ns
from hil.simbus.wire import WireModel
from hil.spec.rig import Rig
from hil.spec.suite import Stimulus
from hil.stimulus.injector import play
from hil.stimulus.timeline import build_timeline

BITRATE = 1_000_000
RATE_HZ = 8_000
RIG = Rig.model_validate({"name": "bench", "buses": {"chassis": {"kind": "can", "emulated": True,
                                                                 "bitrate": BITRATE}}})


def write_stimulus(path: Path, n: int) -> list[can.Message]:
    msgs = [can.Message(timestamp=i / RATE_HZ, arbitration_id=0x100 + i % 16, data=(i % 65536).to_bytes(2, "little"),
                        is_extended_id=False, channel="can0") for i in range(n)]
    path.write_text("".join(f"({m.timestamp:.6f}) can0 {m.arbitration_id:03X}#{bytes(m.data).hex().upper()}\n"
                            for m in msgs))
    return msgs


def figures(lateness_ns: np.ndarray, span_planned: int, span_actual: int, sent: int) -> dict:
    return {"frames": sent, "p50_us": float(np.percentile(lateness_ns, 50)) / 1e3,
            "p99_us": float(np.percentile(lateness_ns, 99)) / 1e3,
            "p99.9_us": float(np.percentile(lateness_ns, 99.9)) / 1e3, "max_us": float(lateness_ns.max()) / 1e3,
            "early": int((lateness_ns < 0).sum()), "span_error_pct": (span_actual - span_planned) / span_planned * 100}


def run_hil(buses, timeline, timed: bool) -> tuple[dict, dict]:
    r = play(timeline, buses, timed_release=timed)
    return figures(np.asarray(r.lateness_ns), r.span_planned_ns, r.span_actual_ns, r.frames_sent), r.host


def run_python_can(buses, msgs: list[can.Message]) -> dict:
    """The anchor: MessageSync paces, bus.send sends; echoes are read back after the run."""
    model = WireModel(BITRATE)
    bus = buses.open_can("chassis", receive_own_messages=True)
    try:
        first = None
        for msg in can.MessageSync(msgs, timestamps=True):
            if first is None:
                first = now_ns()
            bus.send(msg)
        echoes = []
        while len(echoes) < len(msgs):
            m = bus.recv(2.0)
            if m is None:
                break
            if not m.is_rx:
                echoes.append(m)
    finally:
        bus.shutdown()
    t0 = msgs[0].timestamp
    starts = np.array([from_seconds(e.timestamp) - model.timing(e.arbitration_id, 0, e.dlc, bytes(e.data))[1]
                       for e in echoes])
    planned = np.array([first + from_seconds(m.timestamp - t0) for m in msgs[: len(echoes)]])
    return figures(starts - planned, int(planned[-1] - planned[0]), int(starts[-1] - starts[0]), len(echoes))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2,000 frames instead of 20,000")
    ap.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = ap.parse_args()
    n = 2_000 if args.quick else 20_000
    with tempfile.TemporaryDirectory(prefix="hil-bench-") as tmp:
        stim = Path(tmp) / "stim.log"
        msgs = write_stimulus(stim, n)
        timeline = build_timeline(Stimulus.model_validate({"sources": [{"file": str(stim)}]}), RIG)
        with RigBuses(RIG, Path(tmp) / "run") as buses:
            hil, host = run_hil(buses, timeline, timed=True)
            spin, _ = run_hil(buses, timeline, timed=False)
            anchor = run_python_can(buses, msgs)
    ratio = anchor["p99_us"] / hil["p99_us"] if hil["p99_us"] > 0 else float("inf")
    result = {"frames": n, "rate_hz": RATE_HZ, "bitrate": BITRATE, "quick": args.quick, "host": host,
              "hil": hil, "hil_spin": spin, "python_can_messagesync": anchor,
              "p99_ratio_python_can_over_hil": ratio,
              "goals": {"early": 0, "p99_us": 100, "p99_ratio": 5, "span_error_pct": 0.1}}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"replay fidelity: {n:,} frames at {RATE_HZ / 1000:g} kHz, simbus {BITRATE // 1000} kbit/s "
          f"(PM QoS: {host.get('cpu_dma_latency')})")
    print(f"{'':28} {'p50 µs':>10} {'p99 µs':>10} {'p99.9 µs':>10} {'max µs':>10} {'early':>7} {'span err %':>11}")
    for name, f in (("hil (timed release)", hil), ("hil (sleep+spin, send)", spin),
                    ("python-can MessageSync+send", anchor)):
        print(f"{name:28} {f['p50_us']:10.1f} {f['p99_us']:10.1f} {f['p99.9_us']:10.1f} {f['max_us']:10.1f} "
              f"{f['early']:7d} {f['span_error_pct']:+11.4f}")
    shown = "∞ (hil's p99 is 0)" if ratio == float("inf") else f"{ratio:,.1f}×"
    print(f"p99 python-can / hil: {shown} (goal ≥ 5×)")


if __name__ == "__main__":
    main()
