"""Benchmark: UDP packet replay from a capture to loopback — hil's injector beside a sleep-per-packet player.

A pcap of ``--rate`` datagrams/s for ``--seconds`` (default 10,000/s for 60 s; 200-byte payloads,
each numbered in its first 4 bytes) is replayed to an emulated target's port on 127.0.1.2:

* **hil**: the injector (absolute deadlines, its kernel send timestamps — SO_TIMESTAMPING — as its
  own report);
* **sleep player**: tcpreplay's approach reimplemented — before each packet, sleep the capture's
  gap to the previous one, then send (relative sleeps: errors add up);
* **tcpreplay** (Debian's, when installed; ``--no-tcpreplay`` skips it) on ``lo``, its default pacing.

Every datagram is also stamped on arrival by the kernel of an independent sink process
(``SO_TIMESTAMPNS``), so each player's lateness is arrival − plan (its start + the capture offset)
measured the same way. Goals: 0 early, p99 lateness ≤ 100 µs, span error ≤ 0.01 %, p99 ≥ 5× better
than the sleep player. The load average is printed beside the figures: a busy 2-CPU host is no
quiet one.

    python benchmarks/packet_replay.py [--seconds 60] [--rate 10000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hil.net.capture import udp_frame, write_pcap

TARGET = "127.0.1.2"
SEQ = struct.Struct("<I")
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
PAYLOAD = 200
RIG = {"name": "bench-net", "buses": {"lan": {"kind": "ethernet", "emulated": True}},
       "targets": {"hpc": {"kind": "hpc", "reach": {"via": "emulated"}, "networks": {"lan": {"ports": {}}}}}}


# ---- the sink (a child process of this script) ---------------------------------------------------

def sink(port: int) -> None:
    """Receive numbered datagrams on TARGET:port until b"END"; print [number, kernel arrival on
    CLOCK_MONOTONIC] pairs (the realtime stamps mapped with the clocks' offset, read at both ends
    and interpolated)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.bind((TARGET, port))
    print("ready", flush=True)
    first = (time.time_ns(), time.monotonic_ns())
    got = []
    while True:
        data, anc, _, _ = sock.recvmsg(2048, socket.CMSG_SPACE(16))
        if data == b"END":
            break
        sec, nsec = struct.unpack_from("qq", anc[0][2])
        got.append((SEQ.unpack_from(data)[0], sec * 1_000_000_000 + nsec))
    last = (time.time_ns(), time.monotonic_ns())
    slope = (last[1] - first[1]) / max(1, last[0] - first[0])
    print(json.dumps([(k, first[1] + round((t - first[0]) * slope)) for k, t in got]))


class Sink:
    def __init__(self, port: int):
        self.port = port
        self.proc = subprocess.Popen([sys.executable, __file__, "--sink", str(port)], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def arrivals(self) -> dict[int, int]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"END", (TARGET, self.port))
        return dict(json.loads(self.proc.communicate(timeout=120)[0]))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((TARGET, 0))
        return s.getsockname()[1]


# ---- the players -------------------------------------------------------------------------------

def run_hil(capture: Path, port: int) -> dict:
    from hil.buses import RigBuses
    from hil.spec.rig import Rig
    from hil.spec.suite import Stimulus
    from hil.stimulus.injector import play
    from hil.stimulus.timeline import build_timeline

    RIG["targets"]["hpc"]["networks"]["lan"]["ports"] = {"sink": port}
    rig = Rig.model_validate(RIG)
    timeline = build_timeline(Stimulus.model_validate(
        {"sources": [{"file": str(capture), "map": {"192.168.1.201:2368": "hpc.sink"}}]}), rig)
    sink_ = Sink(port)
    with tempfile.TemporaryDirectory(prefix="hil-bench-net-") as run, RigBuses(rig, Path(run)) as buses:
        report = play(timeline, buses)
    planned = [report.start_ns + s.t_ns for s in timeline.steps]
    out = figures(sink_.arrivals(), planned)
    own = np.asarray(report.lateness_ns)
    out["own_report"] = {"source": report.host["lateness"]["lan"], "early": report.frames_early,
                         "p50_us": float(np.percentile(own, 50)) / 1e3, "p99_us": float(np.percentile(own, 99)) / 1e3,
                         "max_us": float(own.max()) / 1e3, "span_error_pct": report.span_error * 100,
                         "measured": len(own)}
    out["injector"] = report.host.get("wake")
    return out


def run_sleep_player(times: list[int], payloads: list[bytes], port: int) -> dict:
    """tcpreplay's pacing: sleep each gap (relative), then send."""
    sink_ = Sink(port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    start = time.monotonic_ns()
    for k, data in enumerate(payloads):
        if k:
            time.sleep((times[k] - times[k - 1]) / 1e9)
        sock.sendto(data, (TARGET, port))
    sock.close()
    return figures(sink_.arrivals(), [start + t - times[0] for t in times])


def run_tcpreplay(capture: Path, port: int, n: int) -> dict | None:
    """Debian's tcpreplay on ``lo`` (its destination rewritten to TARGET:port with tcprewrite)."""
    if shutil.which("tcpreplay") is None or shutil.which("tcprewrite") is None:
        return None
    rewritten = capture.with_suffix(".lo.pcap")
    subprocess.run(["tcprewrite", f"--portmap=2368:{port}", f"--dstipmap=0.0.0.0/0:{TARGET}/32", "--srcipmap=0.0.0.0/0:127.0.1.1/32",
                    "--enet-dmac=00:00:00:00:00:00",
                    "--enet-smac=00:00:00:00:00:00", "--fixcsum", f"--infile={capture}", f"--outfile={rewritten}"],
                   check=True, capture_output=True)
    sink_ = Sink(port)
    start = time.monotonic_ns()
    proc = subprocess.run(["tcpreplay", "--intf1=lo", str(rewritten)], capture_output=True, text=True)
    arrivals = sink_.arrivals()
    if proc.returncode != 0 or not arrivals:
        sent = next((line.strip() for line in proc.stdout.splitlines() if "Successful packets" in line), "")
        return {"error": f"tcpreplay exited {proc.returncode}; {sent or proc.stderr.strip()[-200:]}; none reached "
                         "a UDP socket" if not arrivals else proc.stderr.strip()[-200:], "received": len(arrivals)}
    first = min(arrivals.values())  # tcpreplay's own start is not observable: its first packet is its plan's origin
    out = figures(arrivals, [first + round(k * 1e9 / (n / SECONDS[0])) for k in range(n)])
    out["note"] = f"planned from its first arrival (tcpreplay started {(first - start) / 1e6:.1f} ms after launch)"
    return out


SECONDS = [0.0]


def figures(arrivals: dict[int, int], planned: list[int]) -> dict:
    late = np.array([arrivals[k] - p for k, p in enumerate(planned) if k in arrivals])
    got = sorted(k for k in arrivals if k < len(planned))
    span_planned = planned[got[-1]] - planned[got[0]]
    span_actual = arrivals[got[-1]] - arrivals[got[0]]
    return {"packets": len(planned), "lost": len(planned) - len(late), "early": int((late < 0).sum()),
            "p50_us": float(np.percentile(late, 50)) / 1e3, "p99_us": float(np.percentile(late, 99)) / 1e3,
            "p99.9_us": float(np.percentile(late, 99.9)) / 1e3, "max_us": float(late.max()) / 1e3,
            "span_error_pct": (span_actual - span_planned) / span_planned * 100}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rate", type=int, default=10_000, help="datagrams per second")
    ap.add_argument("--no-tcpreplay", action="store_true", help="skip Debian's tcpreplay")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sink is not None:
        return sink(args.sink)
    SECONDS[0] = args.seconds
    n = int(args.rate * args.seconds)
    times = [round(k * 1e9 / args.rate) for k in range(n)]
    payloads = [SEQ.pack(k) + bytes(PAYLOAD - SEQ.size) for k in range(n)]
    port = free_port()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="hil-bench-") as tmp:
        capture = Path(tmp) / "replay.pcap"
        with open(capture, "wb") as f:
            write_pcap(f, [(1_000_000_000 + t, udp_frame(("192.168.1.200", 40000), ("192.168.1.201", 2368), p))
                           for t, p in zip(times, payloads)])
        hil = run_hil(capture, port)
        sleeper = run_sleep_player(times, payloads, port)
        tcpreplay = None if args.no_tcpreplay else run_tcpreplay(capture, port, n)
    ratio = sleeper["p99_us"] / hil["p99_us"] if hil["p99_us"] > 0 else float("inf")
    result = {"packets": n, "rate": args.rate, "seconds": args.seconds, "load_before": list(load_before),
              "load_after": list(os.getloadavg()), "uptime": subprocess.run(["uptime"], capture_output=True,
                                                                            text=True).stdout.strip(),
              "hil": hil, "sleep_player": sleeper, "tcpreplay": tcpreplay, "p99_ratio_sleep_over_hil": ratio,
              "goals": {"early": 0, "p99_us": 100, "span_error_pct": 0.01, "p99_ratio": 5},
              "met": {"early": hil["early"] == 0, "p99_us": hil["p99_us"] <= 100,
                      "span_error_pct": abs(hil["span_error_pct"]) <= 0.01, "p99_ratio": ratio >= 5}}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"UDP replay to loopback: {n:,} datagrams at {args.rate:,}/s ({result['uptime']})")
    print(f"{'':26} {'p50 µs':>9} {'p99 µs':>9} {'max µs':>10} {'early':>6} {'lost':>5} {'span err %':>11}")
    for name, f in (("hil injector", hil), ("sleep-per-packet player", sleeper), ("tcpreplay", tcpreplay)):
        if f and "p99_us" in f:
            print(f"{name:26} {f['p50_us']:9.1f} {f['p99_us']:9.1f} {f['max_us']:10.1f} {f['early']:6d} {f['lost']:5d} "
                  f"{f['span_error_pct']:11.5f}")
    print(f"injector's wake-ups: {hil['injector']}")
    print(f"p99 sleep player / hil: {ratio:.1f}× (goal ≥ 5×); hil's own report ({hil['own_report']['source']}): "
          f"p99 {hil['own_report']['p99_us']:.1f} µs, span error {hil['own_report']['span_error_pct']:+.5f} %")


if __name__ == "__main__":
    main()
