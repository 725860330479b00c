"""simbus figures, side by side in one run:

(a) saturation: 4 emulated buses at 1 Mbit/s, each flooded by a sender process and checked by a
    receiver process for lost / reordered / duplicated frames (goal 0, 0, 0) — 60 s, 10 min with --soak;
    once with python-can nodes, once with nodes that speak the broker protocol directly (cheaper
    nodes: on a small machine python-can senders cannot keep 4 buses busy);
(b) capacity: the same 4 buses with the wire model off, aggregate frames/s (goal ≥ 100k), next to
    python-can's in-process ``virtual`` bus;
(c) one-way latency beyond the modelled wire time, sender and receiver in separate processes
    (goal p50 ≤ 50 µs, p99 ≤ 250 µs, and at least 2× better than the ``virtual`` bus), next to the
    ``virtual`` bus and a bare Unix-socket ping. The wire time is modelled here from the sender's own
    send times (queueing behind the previous frame included), not taken from hil's stamps; and
    beside it the delivery error the receiving node reported to the broker against the same error
    from the benchmark's own timestamps (goal: within 20 µs at p50);
(d) harness excess: a stack process answers each 0x500 with 0x580 after a self-timed delay d and
    logs when its ``recv`` returned and when it called ``send``; hil's latency (end of frame to end
    of frame, from the stamps a listener node sees) minus the stack's own processing minus the
    answer's modelled wire time (goal p50 ≤ 50 µs, p99 ≤ 250 µs).

    python benchmarks/simbus.py [--quick | --soak] [--json] [--only saturation,capacity,latency,excess]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import can

from hil.clock import frame_ns
from hil.simbus.protocol import FRAME, HEADER, HELLO, MAX_RECORD

BUSES = 4
WARMUP = 50  # latency samples left out at the start of each round
PING_INTERVAL_US = 1000
END_ID = 0x7FF
PARTS = ("saturation", "capacity", "latency", "excess")
EXCESS_DELAYS_US = (0, 1000)
EXCESS_INTERVAL_US = 4000


# ---- node roles (run as child processes of this script) -----------------------------------------

def flood_send(channel: str, seconds: float, raw: bool) -> dict:
    """Send sequence-numbered frames as fast as the bus takes them, then an end marker.

    ``raw``: write protocol records straight to the broker socket (no python-can in the way), to
    measure the broker rather than the nodes."""
    if raw:
        sock = _raw_join(channel)
        send = lambda can_id, seq: sock.sendall(HEADER.pack(FRAME, 0, 8, can_id, 0) + seq)  # noqa: E731
    else:
        bus = can.Bus(interface="simcan", channel=channel)
        msg = can.Message(arbitration_id=0x100, data=bytes(8), is_extended_id=False)

        def send(can_id: int, seq: bytes) -> None:
            msg.arbitration_id = can_id
            msg.data[:] = seq  # one message object, as a sender loop would reuse it
            bus.send(msg)
    print("ready", flush=True)
    sys.stdin.readline()  # "go": every sender starts at once
    n, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _ in range(100):
            send(0x100, n.to_bytes(8, "big"))
            n += 1
    send(END_ID, n.to_bytes(8, "big"))
    sock.close() if raw else bus.shutdown()
    return {"sent": n}


def _raw_join(channel: str) -> socket.socket:
    """A blocking protocol-level connection to a broker socket, welcomed as a node."""
    from hil.simbus.protocol import connect

    sock = connect(channel)
    sock.setblocking(True)
    sock.send(HEADER.pack(HELLO, 0, 0, 0, 0))
    sock.recv(MAX_RECORD)  # the welcome
    return sock


def _frames(channel: str, raw: bool):
    """(id, data, end-of-frame seconds) of every frame received, from python-can or the raw socket."""
    if raw:
        with _raw_join(channel) as sock:
            print("ready", flush=True)
            sock.settimeout(60)
            while True:
                record = sock.recv(MAX_RECORD)
                kind, _flags, _dlc, can_id, t_ns = HEADER.unpack_from(record)
                if kind == FRAME:
                    yield can_id, record[HEADER.size:], t_ns / 1e9
    with can.Bus(interface="simcan", channel=channel) as bus:
        print("ready", flush=True)
        while (msg := bus.recv(60)) is not None:
            yield msg.arbitration_id, msg.data, frame_ns(msg) / 1e9
    raise SystemExit("receiver: no frame for 60 s")


def flood_recv(channel: str, raw: bool) -> dict:
    """Count frames until the end marker; classify every sequence number seen."""
    seen = bytearray()
    received = duplicated = reordered = 0
    highest = -1
    first = last = None
    frames = _frames(channel, raw)
    for can_id, data, timestamp in frames:
        seq = int.from_bytes(data, "big")
        if can_id == END_ID:
            sent = seq
            frames.close()  # leaves the with block: the bus is shut down
            break
        last = timestamp
        first = first if first is not None else last
        if seq >= len(seen):
            seen.extend(bytes(seq + 1 - len(seen) + 65536))
        if seen[seq]:
            duplicated += 1
            continue
        seen[seq] = 1
        received += 1
        if seq < highest:
            reordered += 1
        highest = max(highest, seq)
    return {"sent": sent, "received": received, "lost": sent - received, "reordered": reordered,
            "duplicated": duplicated, "span_s": (last - first) if received > 1 else 0.0}


def ping_send(channel: str, count: int, interval_us: int) -> dict:
    """Frames carrying their send time (run clock, ns), one every ``interval_us``; the message is
    built once, so the time is taken right before ``send``, as a stack would stamp its own log."""
    bus = can.Bus(interface="simcan", channel=channel)
    msg = can.Message(arbitration_id=0x10, data=bytes(8), is_extended_id=False)

    def send(t: int) -> None:
        msg.data[:] = t.to_bytes(8, "big")
        bus.send(msg)

    _paced(count, interval_us, send)
    bus.shutdown()
    return {}


def ping_recv(channel: str, count: int) -> dict:
    """Per frame: (send time from its data, when recv was entered, when it returned, hil's stamp), ns;
    and the delivery histogram this node reported to the broker."""
    bus = can.Bus(interface="simcan", channel=channel)
    print("ready", flush=True)
    out = []
    for _ in range(count):
        entered = time.monotonic_ns()
        msg = bus.recv(60)
        returned = time.monotonic_ns()
        out.append((int.from_bytes(msg.data, "big"), entered, returned, frame_ns(msg)))
    bus.shutdown()
    return {"frames": out, "delivery": bus.harness.to_json()}


def answer(channel: str, count: int, delay_us: int) -> dict:
    """The stack under test: answers each 0x500 with 0x580 (same first two bytes) after ``delay_us``, timed
    by itself (sleep, then spin), and logs when recv returned and when it called send."""
    from hil.stimulus.realtime import wait_until

    bus = can.Bus(interface="simcan", channel=channel, can_filters=[{"can_id": 0x500, "can_mask": 0x7FF}])
    reply = can.Message(arbitration_id=0x580, data=bytes(8), is_extended_id=False)
    print("ready", flush=True)
    log = []
    for _ in range(count):
        msg = bus.recv(60)
        got = time.monotonic_ns()
        if msg is None:
            raise SystemExit(f"answer: no 0x500 for 60 s after {len(log)} of {count}")
        reply.data[:2] = msg.data[:2]
        sent = wait_until(got + delay_us * 1000, spin_ns=100_000) if delay_us else time.monotonic_ns()
        bus.send(reply)
        log.append((int.from_bytes(msg.data[:2], "big"), got, sent))
    bus.shutdown()
    return {"log": log}


def stimulate(channel: str, count: int, interval_us: int) -> dict:
    """0x500 frames numbered in their first two bytes, one every ``interval_us``."""
    bus = can.Bus(interface="simcan", channel=channel)
    sent = iter(range(count))
    _paced(count, interval_us, lambda t: bus.send(can.Message(
        arbitration_id=0x500, data=next(sent).to_bytes(2, "big") + bytes(6), is_extended_id=False)))
    bus.shutdown()
    return {}


def unix_recv(path: str, count: int) -> dict:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server.bind(path)
    server.listen(1)
    print("ready", flush=True)
    conn, _ = server.accept()
    out = []
    for _ in range(count):
        data = conn.recv(64)
        out.append((time.monotonic_ns() - int.from_bytes(data[:8], "big")) / 1000)
    conn.close()
    server.close()
    return {"latency_us": out}


def unix_send(path: str, count: int, interval_us: int) -> dict:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.connect(path)
    _paced(count, interval_us, lambda t: sock.send(t.to_bytes(8, "big") + bytes(8)))
    sock.close()
    return {}


def _paced(count: int, interval_us: int, send) -> None:
    """``send(now_ns)`` about every ``interval_us``. Plain sleeps, no spinning: each sample carries
    its real send time, and a spinning sender would take CPU from the path being measured."""
    next_t = time.monotonic_ns()
    for _ in range(count):
        next_t += interval_us * 1000
        time.sleep(max(0.0, (next_t - time.monotonic_ns()) / 1e9))
        send(time.monotonic_ns())


ROLES = {"flood-send": flood_send, "flood-recv": flood_recv, "ping-send": ping_send, "ping-recv": ping_recv,
         "unix-send": unix_send, "unix-recv": unix_recv, "answer": answer, "stimulate": stimulate}


# ---- orchestration --------------------------------------------------------------------------

def _spawn(role: str, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "_node", role, json.dumps(args)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def _await_ready(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline().strip()
    if line != "ready":
        raise SystemExit(f"benchmark node did not start (said {line!r})")


def _result(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate(timeout=900)
    if proc.returncode:
        raise SystemExit(f"benchmark node failed with exit code {proc.returncode}")
    return json.loads(out.strip().splitlines()[-1])


def _rig(wire_model: bool):
    from hil.spec.rig import Rig

    buses = {f"bus{i}": {"kind": "can", "emulated": True, "bitrate": 1_000_000, "wire_model": wire_model}
             for i in range(BUSES)}
    return Rig.model_validate({"name": "bench", "buses": buses})


def flood(wire_model: bool, seconds: float, folder: Path, raw: bool = False) -> dict:
    """Every bus flooded at once; per-bus integrity and the aggregate rate."""
    from hil.buses import RigBuses

    with RigBuses(_rig(wire_model), folder) as buses:
        names = list(buses.rig.buses)
        receivers = [_spawn("flood-recv", buses.can_config(n)["channel"], raw) for n in names]
        for r in receivers:
            _await_ready(r)
        senders = [_spawn("flood-send", buses.can_config(n)["channel"], seconds, raw) for n in names]
        for s in senders:
            _await_ready(s)
        before = {n: buses.stats(n) for n in names}
        for s in senders:
            s.stdin.write("go\n")
            s.stdin.flush()
        cpu_before = _cpu_seconds(buses.broker_pid)
        for s in senders:
            _result(s)
        after = {n: buses.stats(n) for n in names}
        per_bus = {n: _result(r) for n, r in zip(names, receivers)}
        broker_cpu = _cpu_seconds(buses.broker_pid) - cpu_before
    for n, r in per_bus.items():
        r["frames_per_s"] = round(r["received"] / r["span_s"]) if r["span_s"] else 0
        busy_s = (after[n]["busy_ns"] - before[n]["busy_ns"]) / 1e9  # wire time of the flood's frames
        r["bus_load"] = round(busy_s / r["span_s"], 3) if r["span_s"] else 0.0  # ... over first to last frame
        r["overruns"] = after[n]["overruns"]
    total = {k: sum(r[k] for r in per_bus.values()) for k in ("sent", "received", "lost", "reordered", "duplicated")}
    total["frames_per_s"] = sum(r["frames_per_s"] for r in per_bus.values())
    total["broker_cpu_us_per_frame"] = round(broker_cpu * 1e6 / max(1, total["received"]), 1)
    return {"seconds": seconds, "buses": per_bus, "total": total}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def virtual_capacity(count: int) -> dict:
    """python-can's in-process ``virtual`` bus: one thread sends, another receives."""
    channel = f"hil-bench-{os.getpid()}"
    tx, rx = can.Bus(interface="virtual", channel=channel), can.Bus(interface="virtual", channel=channel)
    msg = can.Message(arbitration_id=0x100, data=bytes(8), is_extended_id=False)
    t0 = time.perf_counter()
    sender = threading.Thread(target=lambda: [tx.send(msg) for _ in range(count)])
    sender.start()
    for _ in range(count):
        rx.recv(10)
    elapsed = time.perf_counter() - t0
    sender.join()
    tx.shutdown()
    rx.shutdown()
    return {"frames_per_s": round(count / elapsed)}


def _one_bus(bitrate: int):
    from hil.spec.rig import Rig

    return Rig.model_validate({"name": "lat", "buses": {"lat": {"kind": "can", "emulated": True, "bitrate": bitrate}}})


def latency_simbus(count: int, interval_us: int, folder: Path, bitrate: int) -> dict:
    """Latency beyond wire time from the benchmark's own timestamps: the end of frame is modelled
    from the send time (and the previous frame's, should it still hold the wire)."""
    from hil.buses import RigBuses
    from hil.simbus.wire import WireModel

    with RigBuses(_one_bus(bitrate), folder) as buses:
        channel = buses.can_config("lat")["channel"]
        rx = _spawn("ping-recv", channel, count)
        _await_ready(rx)
        tx = _spawn("ping-send", channel, count, interval_us)
        _result(tx)
        got = _result(rx)
    model, free = WireModel(bitrate), 0
    beyond, delivery, stamp_gap = [], [], []
    for sent, entered, returned, stamp in got["frames"]:
        duration, eof_offset = model.timing(0x10, 0, 8, sent.to_bytes(8, "big"))
        start = max(sent, free)
        free = start + duration
        eof = start + eof_offset
        beyond.append((returned - eof) / 1000)
        delivery.append((returned - max(eof, entered)) / 1000)
        stamp_gap.append((stamp - eof) / 1000)
    return {"beyond": beyond, "delivery": delivery, "stamp_gap": stamp_gap, "reported": got["delivery"]}


def latency_unix(count: int, interval_us: int, path: Path) -> list[float]:
    rx = _spawn("unix-recv", str(path), count)
    _await_ready(rx)
    tx = _spawn("unix-send", str(path), count, interval_us)
    _result(tx)
    return _result(rx)["latency_us"]


def latency_virtual(count: int, interval_us: int) -> list[float]:
    channel = f"hil-lat-{os.getpid()}"
    tx, rx = can.Bus(interface="virtual", channel=channel), can.Bus(interface="virtual", channel=channel)
    out: list[float] = []

    def receive():
        for _ in range(count):
            msg = rx.recv(10)
            out.append((time.monotonic_ns() - int.from_bytes(msg.data, "big")) / 1000)

    thread = threading.Thread(target=receive)
    thread.start()
    _paced(count, interval_us, lambda t: tx.send(can.Message(arbitration_id=0x10, data=t.to_bytes(8, "big"))))
    thread.join()
    tx.shutdown()
    rx.shutdown()
    return out


def latencies(rounds: int, per_round: int, folder: Path, bitrate: int) -> dict:
    """The three one-way latencies in interleaved rounds, so each sees the same machine load; the
    first WARMUP samples of every round are left out (first-use costs in every process). Beside
    simbus's, the delivery error from the benchmark's timestamps and as the receiving node reported
    it (all of its frames: its histogram cannot leave the warm-up out)."""
    from hil.harness import ErrorHistogram

    out: dict[str, list[float]] = {"simbus": [], "virtual_in_process": [], "unix_socket_ping": []}
    delivery: list[float] = []
    reported = ErrorHistogram()
    for r in range(rounds):
        n = WARMUP + per_round
        sim = latency_simbus(n, PING_INTERVAL_US, folder / f"c{r}", bitrate)
        out["simbus"] += sim["beyond"][WARMUP:]
        delivery += sim["delivery"]
        reported.merge(ErrorHistogram.from_json(sim["reported"]))
        out["virtual_in_process"] += latency_virtual(n, PING_INTERVAL_US)[WARMUP:]
        out["unix_socket_ping"] += latency_unix(n, PING_INTERVAL_US, folder / f"ping{r}.sock")[WARMUP:]
    figures = {name: percentiles(samples) for name, samples in out.items()}
    for q in ("p50", "p99"):
        figures[f"virtual_over_simbus_{q}"] = round(figures["virtual_in_process"][f"{q}_us"]
                                                    / max(0.1, figures["simbus"][f"{q}_us"]), 2)
    summary = reported.summary()
    figures["harness_delivery"] = {
        "independent": percentiles(delivery),
        "reported_by_node": {"p50_us": round(summary["p50_ns"] / 1000, 1), "p99_us": round(summary["p99_ns"] / 1000, 1),
                             "max_us": round(summary["max_ns"] / 1000, 1), "n": summary["count"],
                             "early": summary["early"]}}
    figures["harness_delivery"]["p50_difference_us"] = round(
        figures["harness_delivery"]["reported_by_node"]["p50_us"] - figures["harness_delivery"]["independent"]["p50_us"], 1)
    return {"bitrate": bitrate, **figures}


def excess(count: int, interval_us: int, delay_us: int, folder: Path, bitrate: int) -> dict:
    """hil's latency of an answering stack minus what the stack itself logged and the answer's
    modelled wire time; beside it the delivery error the stack's node reported."""
    from hil.buses import RigBuses
    from hil.harness import ErrorHistogram
    from hil.simbus.wire import WireModel

    with RigBuses(_one_bus(bitrate), folder) as buses:
        channel = buses.can_config("lat")["channel"]
        listener = buses.open_can("lat", hold=False)  # like hil's recorder: it needs only the stamps
        stack = _spawn("answer", channel, count, delay_us)
        _await_ready(stack)
        stimulus = _spawn("stimulate", channel, count, interval_us)
        stamps: dict[tuple[int, int], int] = {}
        while len(stamps) < 2 * count and (msg := listener.recv(10)) is not None:
            stamps[msg.arbitration_id, int.from_bytes(msg.data[:2], "big")] = frame_ns(msg)
        _result(stimulus)
        log = _result(stack)["log"]
        listener.shutdown()
        time.sleep(0.1)  # the nodes' last reports
        reported = ErrorHistogram.from_json(buses.stats("lat")["harness"]["delivery"]).summary()
    wire = WireModel(bitrate).timing(0x580, 0, 8, bytes(8))[1]
    out = []
    for counter, got, sent in log[WARMUP:]:
        request, answer_ = stamps.get((0x500, counter)), stamps.get((0x580, counter))
        if request is not None and answer_ is not None:
            out.append(((answer_ - request) - (sent - got) - wire) / 1000)
    return {"delay_us": delay_us, "answer_wire_us": wire / 1000, "excess": percentiles(out),
            "stack_delivery_reported": {(k[:-3] + "_us" if k.endswith("_ns") else k): (
                v / 1000 if k.endswith("_ns") and v is not None else v) for k, v in reported.items()}}


def percentiles(samples: list[float]) -> dict:
    """p50 / p99 / max / mean of latency samples (µs)."""
    s = sorted(samples)
    pick = lambda q: round(s[min(len(s) - 1, int(q * len(s)))], 1)  # noqa: E731
    return {"p50_us": pick(0.5), "p99_us": pick(0.99), "max_us": round(s[-1], 1), "n": len(s),
            "mean_us": round(statistics.fmean(s), 1)}


def _print_buses(flooded: dict) -> None:
    for name, r in flooded["buses"].items():
        print(f"    {name}: {r['received']:>9,} frames  {r['frames_per_s']:>6,}/s  load {r['bus_load']:.3f}  "
              f"lost {r['lost']}  reordered {r['reordered']}  duplicated {r['duplicated']}")
    print(f"    broker CPU per frame: {flooded['total']['broker_cpu_us_per_frame']} µs")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "_node":  # a node of a measurement, in its own process
        print(json.dumps(ROLES[sys.argv[2]](*json.loads(sys.argv[3]))), flush=True)
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a few seconds per part (checks the benchmark runs)")
    mode.add_argument("--soak", action="store_true", help="10 minutes of saturation instead of 60 s")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--only", metavar="PARTS", default=",".join(PARTS),
                    help="comma-separated parts to run: saturation (a), capacity (b), latency (c), excess (d); "
                         "default all")
    ap.add_argument("--bitrate", type=int, default=1_000_000, help="bitrate of the latency and excess buses")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    if not parts <= set(PARTS):
        ap.error(f"--only: expected some of {', '.join(PARTS)}, got {args.only!r}")
    saturate_s = 1.0 if args.quick else 600.0 if args.soak else 60.0
    capacity_s = 1.0 if args.quick else 10.0
    rounds, per_round = (1, 100) if args.quick else (5, 1000)
    with tempfile.TemporaryDirectory(prefix="hil-bench-") as tmp:
        folder = Path(tmp)
        results: dict = {}
        if "saturation" in parts:
            results["saturation_1mbit"] = flood(True, saturate_s, folder / "a")
            results["saturation_1mbit_raw_nodes"] = flood(True, saturate_s, folder / "a2", raw=True)
        if "capacity" in parts:
            results["capacity_wire_off"] = flood(False, capacity_s, folder / "b")
            results["capacity_wire_off_raw_nodes"] = flood(False, capacity_s, folder / "b2", raw=True)
            results["capacity_virtual_in_process"] = virtual_capacity(20_000 if args.quick else 200_000)
        if "latency" in parts:
            results["latency_beyond_wire"] = latencies(rounds, per_round, folder, args.bitrate)
        if "excess" in parts:
            results["harness_excess"] = [excess(WARMUP + per_round, EXCESS_INTERVAL_US, d, folder / f"d{d}",
                                                args.bitrate) for d in EXCESS_DELAYS_US]
        results["goals"] = {"saturation lost/reordered/duplicated": [0, 0, 0], "capacity frames/s": 100_000,
                            "latency p50_us": 50, "latency p99_us": 250, "virtual_over_simbus p50, p99": 2,
                            "harness delivery p50 difference_us": 20, "excess p50_us": 50, "excess p99_us": 250}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    if "saturation" in parts:
        sat = results["saturation_1mbit"]
        print(f"(a) saturation, {BUSES} buses at 1 Mbit/s for {sat['seconds']:.0f} s:")
        _print_buses(sat)
        print("    with protocol-level nodes (no python-can):")
        _print_buses(results["saturation_1mbit_raw_nodes"])
    if "capacity" in parts:
        _print_capacity(results)
    if "latency" in parts:
        lat = results["latency_beyond_wire"]
        print(f"(c) one-way latency beyond wire time at {lat['bitrate']:,} bit/s:")
        for name in ("simbus", "virtual_in_process", "unix_socket_ping"):
            _print_row(name, lat[name])
        print(f"    virtual / simbus: p50 {lat['virtual_over_simbus_p50']}×, p99 {lat['virtual_over_simbus_p99']}× "
              "(goal ≥ 2×)")
        h = lat["harness_delivery"]
        print("    delivery error of the receiving node:")
        _print_row("independent", h["independent"])
        _print_row("reported by the node", h["reported_by_node"])
    if "excess" in parts:
        print("(d) harness excess over the stack's own processing and the answer's wire time:")
        for r in results["harness_excess"]:
            _print_row(f"delay {r['delay_us'] / 1000:g} ms", r["excess"])


def _print_row(name: str, r: dict) -> None:
    print(f"    {name:22s} p50 {r['p50_us']:8.1f} µs  p99 {r['p99_us']:8.1f} µs  max {r['max_us']:9.1f} µs")


def _print_capacity(results: dict) -> None:
    cap = results["capacity_wire_off"]
    print(f"(b) capacity, wire model off: {cap['total']['frames_per_s']:,} frames/s aggregate "
          f"(lost {cap['total']['lost']}); python-can virtual in-process: "
          f"{results['capacity_virtual_in_process']['frames_per_s']:,} frames/s; "
          f"broker CPU per frame {cap['total']['broker_cpu_us_per_frame']} µs")
    raw = results["capacity_wire_off_raw_nodes"]["total"]
    print(f"    with protocol-level nodes (no python-can): {raw['frames_per_s']:,} frames/s aggregate "
          f"(lost {raw['lost']}); broker CPU per frame {raw['broker_cpu_us_per_frame']} µs")


if __name__ == "__main__":
    main()
