"""Benchmark: camera and lidar replay with CAN stimulus on one timeline — lateness per stream, lossless recording.

The AEB scene (benches/aeb/scene.py) for ``--seconds`` (default 20): a front camera at 1080p, 30 fps
(JPEG with sensor noise, ~200 kB a frame, replayed as RTP/JPEG paced at 1 Gbit/s), a VLP-16 lidar
(754 packets/s) and the radar/wheel-speed CAN log (100 frames/s), played by hil's injector to an
emulated target (127.0.1.2) and an emulated CAN bus. An independent sink process stamps every
datagram on arrival (kernel ``SO_TIMESTAMPNS``) and checks it byte for byte; hil's recorder records
the CAN bus and the injected datagrams, as a bench does. Per stream: lateness (arrival − plan)
p50/p99/max, early and lost datagrams, and the injector's own figures beside (kernel send stamps
for datagrams, echoes for CAN, which has no independent figures here); the recording against what
was sent. Goals: 0 early, p99 lateness ≤ 100 µs per stream, nothing lost, the recording lossless.
The host's load (load averages and CPU pressure, PSI ``some avg10``: the share of the last 10 s in
which a runnable task waited for a CPU) is printed before and after: a busy 2-CPU host is no quiet one.

    python benchmarks/camera_replay.py [--seconds 20] [--width 1920 --height 1080] [--json]
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benches" / "aeb"))

import make_stimulus  # noqa: E402  (the AEB demo's generators)
import scene  # noqa: E402

TARGET = "127.0.1.2"
STREAMS = ("camera", "lidar")
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
DISTINCT_FRAMES = 30  # frames made; the camera stream cycles through them


# ---- the sink (a child process of this script) ---------------------------------------------------

def sink(ports: list[int]) -> None:
    """Receive on TARGET at ``ports`` until b"END" came on each; print per port [crc32, kernel
    arrival on CLOCK_MONOTONIC] (realtime stamps mapped by the clocks' offset, read at both ends)."""
    socks = []
    for port in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        s.bind((TARGET, port))
        socks.append(s)
    print("ready", flush=True)
    first = (time.time_ns(), time.monotonic_ns())
    got: list[list[tuple[int, int]]] = [[] for _ in ports]
    open_ = set(range(len(ports)))
    while open_:
        for s in select.select([socks[i] for i in open_], [], [])[0]:
            i = socks.index(s)
            data, anc, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(16))
            if data == b"END":
                open_.discard(i)
                continue
            sec, nsec = struct.unpack_from("qq", anc[0][2])
            got[i].append((zlib.crc32(data), sec * 1_000_000_000 + nsec))
    last = (time.time_ns(), time.monotonic_ns())
    slope = (last[1] - first[1]) / max(1, last[0] - first[0])
    print(json.dumps([[(c, first[1] + round((t - first[0]) * slope)) for c, t in g] for g in got]))


def start_sink(ports: list[int]) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, __file__, "--sink", *map(str, ports)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def stop_sink(proc: subprocess.Popen, ports: list[int]) -> list[list[tuple[int, int]]]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for port in ports:
            s.sendto(b"END", (TARGET, port))
    return json.loads(proc.communicate(timeout=300)[0])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((TARGET, 0))
        return s.getsockname()[1]


# ---- the stimulus ----------------------------------------------------------------------------------

def make_sources(out: Path, seconds: float, width: int, height: int) -> dict[str, Path]:
    """The camera MCAP, lidar pcap and radar CAN log of an approach lasting ``seconds``."""
    import cantools

    world = scene.Scene(seconds=seconds, distance=15.0 * seconds + 20, closing=15.0)
    distinct = [scene.frame(world, scene.START_NS + i * 1_000_000_000 // scene.FPS, width, height, noise=4.0)
                for i in range(DISTINCT_FRAMES)]
    n = int(seconds * scene.FPS)
    scene.write_mcap(out / "camera.mcap", ((scene.START_NS + i * 1_000_000_000 // scene.FPS, distinct[i % len(distinct)])
                                           for i in range(n)))
    scene.write_pcap(out / "lidar.pcap", scene.lidar_packets(world))
    db = cantools.database.Database()
    db.add_dbc_file(str(ROOT / "benches" / "aeb" / "aeb.dbc"))
    make_stimulus.write(out / "radar.log", make_stimulus.scenario(seconds, world.distance, 15.0, 15.0, 0.0, db))
    return {"camera": out / "camera.mcap", "lidar": out / "lidar.pcap", "can": out / "radar.log"}


# ---- the run -------------------------------------------------------------------------------------

def stats(late: list[int] | np.ndarray) -> dict:
    late = np.asarray(late)
    if not len(late):
        return {"count": 0}
    return {"count": int(len(late)), "early": int((late < 0).sum()), "p50_us": float(np.percentile(late, 50)) / 1e3,
            "p99_us": float(np.percentile(late, 99)) / 1e3, "max_us": float(late.max()) / 1e3}


def run(sources: dict[str, Path], tmp: Path) -> dict:
    from hil.buses import RigBuses
    from hil.recording import load
    from hil.recording.recorder import Recorder
    from hil.spec.rig import Rig
    from hil.spec.suite import Stimulus
    from hil.stimulus.events import PacketEvent
    from hil.session.inject import inject
    from hil.stimulus.timeline import build_timeline

    ports = {name: free_port() for name in STREAMS}
    rig = Rig.model_validate({
        "name": "bench-camera", "buses": {"sensor": {"kind": "can", "emulated": True, "bitrate": 500_000},
                                          "lan": {"kind": "ethernet", "emulated": True}},
        "targets": {"hpc": {"kind": "hpc", "reach": {"via": "emulated"}, "buses": ["sensor"],
                            "networks": {"lan": {"address": TARGET, "ports": ports}}}}})
    started = time.monotonic()
    timeline = build_timeline(Stimulus.model_validate({"sources": [
        {"file": str(sources["can"])},
        {"file": str(sources["camera"]), "map": {scene.CAMERA_TOPIC: "hpc.camera"}},
        {"file": str(sources["lidar"]), "map": {f"{scene.LIDAR_DESTINATION[0]}:{scene.LIDAR_DESTINATION[1]}": "hpc.lidar"}},
    ]}), rig)
    read_s = time.monotonic() - started
    stream_of = {port: name for name, port in ports.items()}
    planned: dict[str, list[tuple[int, int]]] = {name: [] for name in (*STREAMS, "can")}  # (crc, timeline ns)
    for step in timeline.steps:
        ev = step.event
        name = stream_of[ev.to[1]] if isinstance(ev, PacketEvent) else "can"
        planned[name].append((zlib.crc32(ev.data), step.t_ns))
    proc = start_sink(list(ports.values()))
    with RigBuses(rig, tmp / "run") as buses:
        with Recorder(tmp / "recording.mcap", buses, ["sensor", "lan"]) as recorder:
            _, report = inject(timeline, {}, buses, recorder)  # as a bench does
            time.sleep(0.5)  # the last frames reach the recorder
    arrivals = stop_sink(proc, list(ports.values()))
    out: dict = {"timeline": {"steps": len(timeline.steps), "read_s": round(read_s, 1)}}
    own_packets = {name: [] for name in STREAMS}
    for _, k, late in report.packets.get("lan", []):
        own_packets[stream_of[timeline.steps[k].event.to[1]]].append(late)
    for name, got in zip(ports, arrivals):
        plan = planned[name]
        matched = [t - report.start_ns - p[1] for p, (crc, t) in zip(plan, got) if p[0] == crc]
        out[name] = {"sent": len(plan), "received": len(got), "lost": len(plan) - len(got),
                     "mismatched": len(got) - len(matched) if len(got) <= len(plan) else None,
                     **stats(matched), "own": {"source": report.host.get("lateness", {}).get("lan"),
                                               **stats(own_packets[name])}}
    own_all = Counter(report.lateness_ns)
    own_all.subtract(Counter(x for xs in own_packets.values() for x in xs))
    can_late = list(own_all.elements())
    out["can"] = {"sent": len(planned["can"]), "own": {"source": report.host.get("lateness", {}).get("sensor"),
                                                        **stats(can_late)}}
    rec = load(tmp / "recording.mcap", strict=True)
    injected = [d for d in rec.datagrams.get("lan", []) if d.injected]
    recorded = Counter(stream_of[int(d.dst.rsplit(":", 1)[1])] for d in injected)
    out["recording"] = {"can_frames": len(rec.frames("sensor").t_ns), **{f"{s}_datagrams": recorded[s] for s in STREAMS},
                        "bytes_equal": sorted(zlib.crc32(d.data) for d in injected)
                        == sorted(c for s in STREAMS for c, _ in planned[s])}
    out["recording"]["lossless"] = out["recording"]["bytes_equal"] and out["recording"]["can_frames"] == len(
        planned["can"]) and all(recorded[s] == len(planned[s]) for s in STREAMS)
    out["replay"] = {"span_error_pct": report.span_error * 100, "early": report.frames_early,
                     "frames_planned": report.frames_planned, "frames_sent": report.frames_sent,
                     "wake": report.host.get("wake")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--sink", type=int, nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sink is not None:
        return sink(args.sink)
    from hil.stimulus.realtime import host_load

    load_before = host_load()
    with tempfile.TemporaryDirectory(prefix="hil-bench-camera-") as tmp:
        sources = make_sources(Path(tmp), args.seconds, args.width, args.height)
        sizes = {k: p.stat().st_size for k, p in sources.items()}
        result = run(sources, Path(tmp))
    met = {f"{s}_p99_us": result[s].get("p99_us", float("inf")) <= 100 for s in STREAMS}
    met.update({f"{s}_early": result[s].get("early") == 0 for s in STREAMS},
               lost=all(result[s]["lost"] == 0 for s in STREAMS), recording=result["recording"]["lossless"])
    result.update({"seconds": args.seconds, "frame": f"{args.width}x{args.height}", "file_bytes": sizes,
                   "load_before": load_before, "load_after": host_load(),
                   "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
                   "goals": {"early": 0, "p99_us": 100, "lost": 0, "recording": "lossless"}, "met": met})
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"camera {args.width}x{args.height} @ 30 fps + lidar 754/s + CAN, {args.seconds:g} s ({result['uptime']})")
    print(f"{'':8} {'sent':>7} {'lost':>5} {'early':>6}{'p50 µs':>9}{'p99 µs':>10}{'max µs':>11}   own p99 µs")
    for s in (*STREAMS, "can"):
        r = result[s]
        own = "".join(f"{r[k]:{w}.1f}" if k in r else f"{'—':>{w}}" for k, w in (("p50_us", 9), ("p99_us", 10),
                                                                                 ("max_us", 11)))
        print(f"{s:8} {r['sent']:7d} {r.get('lost', 0):5d} {r.get('early', 0):6d}{own}   "
              f"{r['own'].get('p99_us', float('nan')):.1f} ({r['own']['source']})")
    print(f"recording: {result['recording']}; goals met: {met}")
    print(f"host before: {load_before}; after: {result['load_after']}; injector: {result['replay']['wake']}")


if __name__ == "__main__":
    main()
