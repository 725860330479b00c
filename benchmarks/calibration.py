"""Benchmark: the harness against an outside truth — hil's latencies split with the stack's own log.

Runs the calibration suite's HPC responder benches (``hpc-0ms``, ``hpc-1ms``, ``hpc-5ms`` of
``benches/calibration.yaml`` on ``rigs/sim-aeb.yaml``, the real bench runner) and splits every
frame's latency as hil recorded it with the responder's own log (``benches/aeb/responder.py``):

    latency = the answer's wire time + the responder's handling and backlog + the excess
    excess  = delivered late (recv returned − the later of end of frame and recv called)
            + stamped late (answer's end of frame − wire − send)

The excess is the harness's part, measured from outside hil; beside it, what hil itself reported
for the bench (delivery error on chassis, the probe's bound). The anchor, in the same run: the
same responder on python-can's in-process ``virtual`` bus (one hop: stimulus sent → the
responder's ``recv`` returned). Goals (quiet host): excess p50 ≤ 50 µs, p99 ≤ 250 µs; hil's
reported delivery p50 within 20 µs of the responder's own.

    python benchmarks/calibration.py [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import threading
import time
from pathlib import Path

import can
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCHES = ("hpc-0ms", "hpc-1ms", "hpc-5ms")
LOG = re.compile(r"responder: frame (\d+) stamp_s=([\d.]+) wait_ns=(\d+) recv_ns=(\d+) send_ns=(\d+)$")
FRAMES, PERIOD_S = 200, 0.010


def split(run_dir: Path, bench: dict) -> dict:
    """The bench's frames split with the responder's log; hil's own figures beside them (µs)."""
    from hil.recording import load
    from hil.simbus.wire import WireModel

    rec = load(run_dir / bench["dir"] / "recording.mcap", strict=True)
    chassis = rec.frames("chassis")
    stim = {int(chassis.data[i, 0]): int(chassis.t_ns[i]) for i in np.flatnonzero(chassis.id == 0x500)}
    answers = {int(chassis.data[i, 0]): (int(chassis.t_ns[i]), bytes(chassis.data[i, :8]))
               for i in np.flatnonzero(chassis.id == 0x580)}
    wire = WireModel(500_000)
    delivered, stamped = [], []
    for line in rec.consoles:
        m = LOG.match(line.text)
        if m is None or int(m[1]) not in answers:
            continue
        k, wait, received, sent = int(m[1]), *map(int, m.groups()[2:])
        answer, data = answers[k]
        delivered.append(received - max(stim[k], wait))
        stamped.append(answer - wire.timing(0x580, 0, 8, data)[1] - sent)
    delivered, stamped = np.array(delivered), np.array(stamped)
    h = bench["harness"]
    reported = h.get("buses", {}).get("chassis", {}).get("delivery") or {}
    bound = bench["probes"]["response"].get("harness") or {}
    own = _us(delivered, 50)
    return {"frames": len(delivered), "verdict": bench["verdict"],
            "excess_us": {"p50": _us(delivered + stamped, 50), "p99": _us(delivered + stamped, 99),
                          "max": _us(delivered + stamped, 100)},
            "delivered_late_us": {"p50": own, "p99": _us(delivered, 99)},
            "stamped_late_us": {"p50": _us(stamped, 50), "p99": _us(stamped, 99)},
            "hil_reported_us": {"delivery_p50": _ns_us(reported.get("p50_ns")),
                                "delivery_p99": _ns_us(reported.get("p99_ns")),
                                "bound_p99": _ns_us(bound.get("p99_ns")), "bound_max": _ns_us(bound.get("max_ns"))},
            "agreement_p50_us": None if reported.get("p50_ns") is None else abs(reported["p50_ns"] / 1e3 - own)}


def virtual_anchor() -> dict:
    """The responder's first hop on python-can's ``virtual`` bus: stimulus sent → ``recv`` returned."""
    channel = f"hil-bench-{os.getpid()}"
    tx, rx = can.Bus(interface="virtual", channel=channel), can.Bus(interface="virtual", channel=channel)
    got: list[int] = []

    def respond() -> None:
        while len(got) < FRAMES:
            if rx.recv(1.0) is not None:
                got.append(time.monotonic_ns())

    t = threading.Thread(target=respond)
    t.start()
    sent = []
    try:
        for i in range(FRAMES):
            time.sleep(PERIOD_S)
            sent.append(time.monotonic_ns())
            tx.send(can.Message(arbitration_id=0x500, data=[i % 256], is_extended_id=False))
        t.join(5)
    finally:
        tx.shutdown()
        rx.shutdown()
    hop = np.array(got) - np.array(sent[: len(got)])
    return {"frames": len(hop), "p50": _us(hop, 50), "p99": _us(hop, 99), "max": _us(hop, 100)}


def _us(ns: np.ndarray, q: float) -> float:
    return float(np.percentile(ns, q)) / 1e3


def _ns_us(ns: float | None) -> float | None:
    return None if ns is None else ns / 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = ap.parse_args()
    from hil.bench import SuiteOptions, run_suite

    with tempfile.TemporaryDirectory(prefix="hil-bench-") as tmp:
        os.environ.setdefault("HIL_LOCK_DIR", str(Path(tmp) / "locks"))
        anchor = virtual_anchor()
        run = run_suite(ROOT / "rigs" / "sim-aeb.yaml", ROOT / "benches" / "calibration.yaml",
                        SuiteOptions(benches=list(BENCHES), out=Path(tmp) / "run", record_history=False))
        benches = {b.name: split(Path(tmp) / "run", b.to_json()) for b in run.benches}
    result = {"load": list(os.getloadavg()), "benches": benches, "python_can_virtual_one_hop_us": anchor,
              "goals": {"excess_p50_us": 50, "excess_p99_us": 250, "agreement_p50_us": 20}}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"calibration against the responder's own log (load {os.getloadavg()[0]:.2f}); µs")
    print(f"{'':10} {'verdict':>8} {'excess p50':>11} {'p99':>8} {'max':>8} {'hil: delivery p50':>18} "
          f"{'responder':>10} {'agree':>6} {'bound p99':>10}")
    for name, b in benches.items():
        e, h = b["excess_us"], b["hil_reported_us"]
        show = lambda v: "—" if v is None else f"{v:.0f}"  # noqa: E731
        print(f"{name:10} {b['verdict']:>8} {e['p50']:11.0f} {e['p99']:8.0f} {e['max']:8.0f} "
              f"{show(h['delivery_p50']):>18} {b['delivered_late_us']['p50']:10.0f} "
              f"{show(b['agreement_p50_us']):>6} {show(h['bound_p99']):>10}")
    print(f"python-can virtual, one hop: p50 {anchor['p50']:.0f}, p99 {anchor['p99']:.0f}, max {anchor['max']:.0f} "
          "(goals: excess p50 ≤ 50, p99 ≤ 250; agreement ≤ 20)")


if __name__ == "__main__":
    main()
