"""A bench on an emulated network, end to end through `hil run`: a lidar capture is replayed to
the HPC's lidar port, the component (a plain process that finds its ports in HIL_NETS) answers
each datagram on CAN and to hil's port; the probe pairs datagram and CAN frame, the recording holds
both directions, and the datagrams' send error is judged as the network's harness error."""

from __future__ import annotations

import json

from hil.recording import load
from tests.e2e.test_aeb import hil
from tests.outcomes import explain, pass_or_harness_error

from .conftest import write_capture

MS = 1_000_000
NODE = """\
import json, os, socket
import can
from hil import net
from hil.buses import bus_from_env

lan = net.from_env("lan")
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((lan["address"], lan["ports"]["lidar"]))
hil = (lan["hil"]["address"], lan["hil"]["ports"]["brake"])
bus = bus_from_env("chassis")
print("lidar-node: ready", flush=True)
while True:
    data = sock.recv(2048)
    bus.send(can.Message(arbitration_id=0x200, data=data[:1], is_extended_id=False))
    sock.sendto(data[:1], hil)
"""
STACK = """\
name: lidar
version: 1.0.0
components:  # the node as a process on the HPC, ready when it says so
  node: {kind: process, target: hpc, files: [node.py], argv: ["{python}", node.py],
         ready: {console: "lidar-node: ready", timeout: 30s}}
"""
SUITE = """\
name: net
defaults: {stack: stack.yaml, settle: 300ms}
benches:
  - name: lidar
    stimulus:
      sources: [{file: lidar.pcap, map: {"192.168.1.201:2368": hpc.lidar}}]
    probes:
      - {name: packet-to-can, pair: counter, window: 500ms,
         from: {bus: lan, port: LIDAR, offset: 0, size: 1}, to: {bus: chassis, id: 0x200, byte: 0}}
    measurements:
      - {name: missed, probe: packet-to-can, stat: missed, le: 0}
      - {name: latency, probe: packet-to-can, stat: p50, unit: ms, lt: 400}
"""


def test_a_packet_bench_runs_on_the_emulated_network_and_pairs_datagrams_with_can(tmp_path, rig_text):
    lidar = rig_text.split("lidar: ")[1].split("}")[0]
    (tmp_path / "rig.yaml").write_text(rig_text)
    (tmp_path / "node.py").write_text(NODE)
    (tmp_path / "stack.yaml").write_text(STACK)
    (tmp_path / "suite.yaml").write_text(SUITE.replace("LIDAR", lidar))
    write_capture(tmp_path / "lidar.pcap", [(k * 10 * MS, "192.168.1.201", 2368, bytes([k]) + bytes(1205))
                                            for k in range(50)])
    r = hil("run", str(tmp_path / "suite.yaml"), "--rig", str(tmp_path / "rig.yaml"),
            "--out", str(tmp_path / "run"), "--no-history")
    assert r.returncode in (0, 3), r.stderr
    bench = json.loads((tmp_path / "run" / "results.json").read_text())["benches"][0]
    assert pass_or_harness_error(bench), explain(bench)
    assert bench["probes"]["packet-to-can"]["stats"]["count"] == 50
    delivery = bench["harness"]["buses"]["lan"]["delivery"]
    assert delivery["count"] == 50 and delivery["early"] == 0
    rec = load(tmp_path / "run" / "lidar" / "recording.mcap", strict=True)
    sent = [d for d in rec.datagrams["lan"] if d.injected]
    answers = [d for d in rec.datagrams["lan"] if not d.injected]
    assert [d.data[0] for d in sent] == list(range(50)) and sorted(d.data[0] for d in answers) == list(range(50))
    assert {d.src.rsplit(":", 1)[0] for d in answers} == {"127.0.1.2"}
