"""Benchmark: the AEB smoke suite through emulated USB-CAN adapters against the all-simcan run.

Runs ``benches/aeb-smoke.yaml`` (the real ``hil run``) on ``rigs/sim-aeb.yaml`` (every bus simcan),
``rigs/sim-aeb-slcan.yaml`` and ``rigs/sim-aeb-socketcand.yaml`` (chassis through the emulated
adapter: python-can's ``slcan`` / ``socketcand`` driver, the AdapterClock), then the all-simcan rig
again as the anchor: how far two runs of the same rig differ on this host at this load. For each
probe, the p50 latency of each adapter run minus the all-simcan run's, and the allowance: the
adapter's timestamp resolution (1 ms: the SLCAN device's ``Z1`` counter; the server's µs for
socketcand) plus the clock error bound hil reported for chassis (which holds half a tick, the USB
batch between stamp and host and the least round trip — SLCAN's ``V`` query, socketcand's echo —
that bounds the trip after it), plus the anchor's own run-to-run difference. Goal: every |difference|
within its allowance (on a quiet host: the figures are host-load sensitive, hence a benchmark).
Printed beside them: the all-simcan p50s, the load average before and after.

Then the clock itself, frame by frame (``clock``): 10 s of frames every 10 ms on the run clock's
grid (as hil's emulated nodes send, the hardest case for batching) through each emulated adapter
(1 ms batches, 100 ppm drift) to python-can's driver and the recorder's ``AdapterClock``, against
the end of frame a simcan witness saw: the mapped time's error (p0, p50, p99, max, after the first
two seconds) and the bound the clock reported; goal: every error within the bound.

    python benchmarks/adapter_latency.py [--json] [--clock-only SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RIGS = {"simcan": "rigs/sim-aeb.yaml", "slcan": "rigs/sim-aeb-slcan.yaml", "socketcand": "rigs/sim-aeb-socketcand.yaml",
        "simcan-again": "rigs/sim-aeb.yaml"}
RESOLUTION_NS = {"slcan": 1_000_000, "socketcand": 1_000}  # the device's Z1 ms, the server's µs; the batch is in the bound


def run(rig: str, tmp: Path) -> dict:
    """One ``hil run`` of the smoke suite on ``rig``: the bench's results (verdict, probes, harness)."""
    out = tmp / Path(rig).stem / str(len(list(tmp.iterdir())))
    env = {**os.environ, "HIL_LOCK_DIR": str(tmp / "locks"), "NO_COLOR": "1"}
    subprocess.run([sys.executable, "-m", "hil", "run", "benches/aeb-smoke.yaml", "--rig", rig, "--out", str(out),
                    "--history", str(tmp / "history.sqlite")], cwd=ROOT, env=env, capture_output=True, timeout=600)
    return json.loads((out / "results.json").read_text())["benches"][0]


def clock_errors(interface: str, tmp: Path, seconds: float = 10.0, every_ns: int = 10_000_000,
                 drift_ppm: float = 100) -> dict:
    """Mapped time − end of frame, per frame, through the emulated ``interface`` adapter."""
    import threading
    import time

    import can

    from hil.buses import RigBuses
    from hil.clock import frame_ns, now_ns
    from hil.recording.recorder import adapter_clock
    from hil.spec.rig import Rig

    options = {"sleep_after_open": 0} if interface == "slcan" else {"host": "127.0.0.1"}
    rig = Rig.model_validate({"name": "clock", "buses": {"chassis": {
        "kind": "can", "emulated": True, "interface": interface, "channel": "ttyACM0" if interface == "slcan" else "can0",
        "bitrate": 500000, "options": options, "adapter": {"batch": "1ms", "drift_ppm": drift_ppm}}}})
    with RigBuses(rig, tmp / f"clock-{interface}") as buses:
        host = buses.open_can("chassis")
        opened = [host]
        clock = adapter_clock(rig.buses["chassis"], buses.can_config("chassis"), host, opened)
        sender = can.Bus(**buses.can_config("chassis", side="device"))
        witness = can.Bus(**buses.can_config("chassis", side="device"), hold=False)
        ends, mapped, stop = {}, {}, threading.Event()

        def read(bus, out, stamp) -> None:
            while not stop.is_set():
                msg = bus.recv(0.1)
                if msg is not None:
                    out[int.from_bytes(msg.data, "big")] = stamp(msg)

        threads = [threading.Thread(target=read, args=(witness, ends, frame_ns)),
                   threading.Thread(target=read, args=(host, mapped, lambda m: clock.to_run_clock(m.timestamp, now_ns())))]
        for t in threads:
            t.start()
        try:
            start = -(-now_ns() // every_ns) * every_ns
            count = int(seconds * 1e9 // every_ns)
            for i in range(count):
                at = start + i * every_ns
                time.sleep(max(0.0, (at - now_ns()) / 1e9))
                sender.send_at(can.Message(arbitration_id=0x110, data=i.to_bytes(2, "big"), is_extended_id=False), at)
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join()
            for bus in (*opened, sender, witness):
                bus.shutdown()
    skip = int(2e9 // every_ns)
    errors = sorted(mapped[i] - ends[i] for i in mapped if i >= skip and i in ends)
    bound = clock.error_bound_ns()
    pick = lambda q: errors[min(len(errors) - 1, int(q * len(errors)))]  # noqa: E731
    return {"frames": len(errors), "error_ns": {"p0": errors[0], "p50": pick(0.5), "p99": pick(0.99), "max": errors[-1]},
            "error_bound_ns": bound, "within": sum(abs(e) <= bound for e in errors), "method": clock.method,
            "drift_ppm": clock.drift_ppm}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--clock-only", type=float, metavar="SECONDS",
                        help="only the clock part, SECONDS of frames per adapter (prints its JSON)")
    parser.add_argument("--drift-ppm", type=float, default=100, help="the emulated adapters' drift (clock part)")
    args = parser.parse_args()
    if args.clock_only:
        with tempfile.TemporaryDirectory() as d:
            print(json.dumps({name: clock_errors(name, Path(d), args.clock_only, drift_ppm=args.drift_ppm)
                              for name in RESOLUTION_NS}, indent=2))
        return
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        benches = {name: run(rig, tmp) for name, rig in RIGS.items()}
        clocks = {name: clock_errors(name, tmp, drift_ppm=args.drift_ppm) for name in RESOLUTION_NS}
    p50 = {name: {probe: p["stats"]["p50"] for probe, p in b["probes"].items()} for name, b in benches.items()}
    noise = {probe: abs(p50["simcan-again"][probe] - p50["simcan"][probe]) for probe in p50["simcan"]}
    out = {"load_average": {"before": load_before, "after": os.getloadavg()},
           "verdicts": {name: b["verdict"] for name, b in benches.items()}, "p50_ns": p50, "anchor_noise_ns": noise,
           "adapters": {}}
    for name in RESOLUTION_NS:
        harness = benches[name].get("harness") or {}
        clock = harness.get("clocks", {}).get("chassis", {})
        bound = clock.get("error_bound_ns", 0)
        rows = {}
        for probe, value in p50[name].items():
            allowance = RESOLUTION_NS[name] + bound + noise[probe]
            diff = value - p50["simcan"][probe]
            rows[probe] = {"simcan_p50_ns": p50["simcan"][probe], "p50_ns": value, "diff_ns": diff,
                           "allowance_ns": allowance, "within": abs(diff) <= allowance}
        out["adapters"][name] = {"clock_error_bound_ns": bound, "drift_ppm": clock.get("drift_ppm"),
                                 "clock_method": clock.get("method"), "probes": rows}
    out["clock"] = clocks
    out["goal_met"] = all(r["within"] for a in out["adapters"].values() for r in a["probes"].values())
    out["clock_goal_met"] = all(c["within"] == c["frames"] for c in clocks.values())
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for name, a in out["adapters"].items():
        print(f"{name}: clock bound {a['clock_error_bound_ns'] / 1e3:.1f} µs, drift {a['drift_ppm']} ppm")
        for probe, r in a["probes"].items():
            print(f"  {probe:22s} p50 {r['p50_ns'] / 1e6:8.3f} ms (all-simcan {r['simcan_p50_ns'] / 1e6:8.3f} ms)  "
                  f"diff {r['diff_ns'] / 1e6:+8.3f} ms  allowance {r['allowance_ns'] / 1e6:7.3f} ms  "
                  f"{'ok' if r['within'] else 'OUTSIDE'}")
    for name, c in clocks.items():
        e = c["error_ns"]
        print(f"{name} clock, {c['frames']} frames: mapped − end of frame p0 {e['p0'] / 1e3:+.0f} µs, p50 "
              f"{e['p50'] / 1e3:+.0f}, p99 {e['p99'] / 1e3:+.0f}, max {e['max'] / 1e3:+.0f}; bound ± "
              f"{c['error_bound_ns'] / 1e3:.0f} µs; within {c['within']}/{c['frames']}")
    print(f"load average before {out['load_average']['before']}, after {out['load_average']['after']}")
    print(f"clock goal met: {out['clock_goal_met']}")
    print(f"goal met: {out['goal_met']} (anchor noise: {', '.join(f'{k} {v / 1e6:.3f} ms' for k, v in noise.items())})")


if __name__ == "__main__":
    main()
