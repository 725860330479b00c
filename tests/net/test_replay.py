"""Packet captures as stimulus: read (pcap, pcapng) losslessly, aimed at target ports, played on
one timeline with CAN, measured by the kernel's send stamps, recorded, exported to pcapng that
tshark opens with the right packets and times."""

from __future__ import annotations

import shutil
from decimal import Decimal
import socket
import subprocess
import threading

import pytest

from hil.session.inject import inject
from hil.buses import RigBuses
from hil.errors import StimulusError
from hil.net.udp import KERNEL, RETURNED
from hil.recording import Recorder, load
from hil.recording.export import export
from hil.spec.load import load_rig
from hil.spec.suite import Stimulus
from hil.stimulus.events import PacketEvent
from hil.stimulus.readers import read_source
from hil.stimulus.timeline import build_timeline

from .conftest import write_capture

MS = 1_000_000


@pytest.fixture
def rig(tmp_path, rig_text):
    (tmp_path / "rig.yaml").write_text(rig_text)
    return load_rig(tmp_path / "rig.yaml").model


def lidar_port(rig) -> int:
    return rig.targets["hpc"].networks["lan"].ports["lidar"]


@pytest.mark.parametrize("ng", [False, True])
def test_every_udp_datagram_is_read_with_its_destination_and_time_and_the_rest_is_counted(tmp_path, ng):
    import dpkt

    packets = [(1_000 * MS + k * 250_000 + 123, "192.168.1.201", 2368, bytes([k]) * (100 + k)) for k in range(20)]
    path = write_capture(tmp_path / ("c.pcapng" if ng else "c.pcap"), packets, ng)
    arp = bytes(dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_ARP, data=dpkt.arp.ARP()))
    with open(path, "ab") as f:  # one ARP frame appended (pcap only: a pcapng block needs its own framing)
        if not ng:
            f.write(dpkt.pcap.PktHdr(tv_sec=2, tv_usec=0, caplen=len(arp), len=len(arp)).pack() + arp)
    log = read_source(path)
    assert log.format == ("pcapng" if ng else "pcap") and len(log.events) == 20
    assert all(isinstance(e, PacketEvent) and e.channel == "192.168.1.201:2368" for e in log.events)
    assert [e.data for e in log.events] == [p[3] for p in packets]
    times = [e.t_ns for e in log.events]
    if ng:  # dpkt gives pcapng times as float seconds
        assert all(abs(t - p[0]) < 1_000 for t, p in zip(times, packets))
    else:
        assert times == [p[0] for p in packets]
        assert log.skipped == {"frames that are not IPv4": 1}


def test_a_datagram_the_capture_cut_short_is_refused_naming_the_packet(tmp_path):
    from hil.net.capture import udp_frame, write_pcap

    whole = udp_frame(("10.0.0.1", 1), ("10.0.0.2", 2368), bytes(1206))
    with open(tmp_path / "cut.pcap", "wb") as f:
        write_pcap(f, [(1 * MS, whole), (2 * MS, whole[:200])])
    with pytest.raises(StimulusError, match=r"cut.pcap: packet 2: the UDP header says 1206 payload bytes, the capture "
                                            r"holds 158: the datagram was cut"):
        read_source(tmp_path / "cut.pcap")


def fragmented(ident: int, payload: bytes, mtu: int = 1500) -> list[bytes]:
    """The Ethernet frames of a UDP datagram (192.168.1.201:40000 → 10.0.0.9:2368) that an IP layer
    fragmented for ``mtu``, in order (``ident``: the IP identification they share)."""
    import dpkt

    from hil.net.capture import udp_frame

    ip = dpkt.ethernet.Ethernet(udp_frame(("192.168.1.201", 40000), ("10.0.0.9", 2368), payload)).data
    whole, step = bytes(ip.data), (mtu - 20) // 8 * 8
    frames = []
    for at in range(0, len(whole), step):
        piece = whole[at:at + step]
        frag = dpkt.ip.IP(src=ip.src, dst=ip.dst, p=ip.p, id=ident, ttl=64, data=piece, len=20 + len(piece),
                          mf=int(at + step < len(whole)), offset=at // 8)
        frames.append(bytes(dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_IP, data=frag)))
    return frames


def test_ip_fragments_are_reassembled_into_the_datagram_at_its_last_fragments_time(tmp_path):
    from hil.net.capture import udp_frame, write_pcap

    big, other = bytes(range(256)) * 16, bytes(range(200)) * 30  # 4,096 and 6,000 bytes: 3 and 5 fragments
    a, b = fragmented(7, big), fragmented(8, other)
    small = udp_frame(("192.168.1.201", 40000), ("10.0.0.9", 2368), b"small")
    frames = [a[0], small, a[2], b[4], b[0], a[1], b[2], b[1], b[3]]  # out of order, interleaved
    with open(tmp_path / "frag.pcap", "wb") as f:
        write_pcap(f, [((k + 1) * MS, frame) for k, frame in enumerate(frames)])
    log = read_source(tmp_path / "frag.pcap")
    assert [(e.t_ns, e.channel, e.data) for e in log.events] == [
        (2 * MS, "10.0.0.9:2368", b"small"), (6 * MS, "10.0.0.9:2368", big), (9 * MS, "10.0.0.9:2368", other)]
    assert log.where(1) == "frag.pcap packet 6" and not log.skipped  # every fragment is in a datagram
    with open(tmp_path / "lost.pcap", "wb") as f:  # the middle fragment never came
        write_pcap(f, [(1 * MS, a[0]), (2 * MS, small), (3 * MS, a[2])])
    with pytest.raises(StimulusError, match=r"lost.pcap: packets 1, 3: IP fragments of datagram 192.168.1.201 → "
                                            r"10.0.0.9 \(IP id 7\) that the capture does not complete: 2,624 bytes "
                                            r"of 4,104"):
        read_source(tmp_path / "lost.pcap")
    forged = fragmented(7, bytes(4096))  # the same datagram's bytes 1480… again, but different
    with open(tmp_path / "overlap.pcap", "wb") as f:
        write_pcap(f, [(1 * MS, a[0]), (2 * MS, a[1]), (3 * MS, forged[1])])
    with pytest.raises(StimulusError, match=r"overlap.pcap: packet 3: an IP fragment that overlaps packet 1's "
                                            r"datagram .* at bytes 1480–2959 with other bytes"):
        read_source(tmp_path / "overlap.pcap")


def test_datagrams_are_aimed_at_the_target_port_by_map_or_by_port_number(tmp_path, rig):
    port = lidar_port(rig)
    path = write_capture(tmp_path / "c.pcap", [(k * MS, "10.0.0.9", 2368, b"x") for k in range(3)]
                         + [(5 * MS, "10.0.0.9", port, b"y")])
    mapped = build_timeline(Stimulus.model_validate(
        {"sources": [{"file": str(path), "map": {"10.0.0.9:2368": "hpc.lidar"}}]}), rig)
    assert [(s.bus, s.event.to, s.t_ns) for s in mapped.steps] == [("lan", ("127.0.1.2", port), k * MS) for k in range(3)]
    assert mapped.dropped == {f"on unmapped channel '10.0.0.9:{port}'": 1}
    own = write_capture(tmp_path / "own.pcap", [(0, "10.0.0.9", port, b"y")])
    by_number = build_timeline(Stimulus.model_validate({"sources": [{"file": str(own)}]}), rig)
    assert [s.event.to for s in by_number.steps] == [("127.0.1.2", port)]
    with pytest.raises(StimulusError, match=r"destination '10.0.0.9:2368' needs a 'map' entry .*0 target ports "
                                            r"have number 2368: hpc.lidar"):
        build_timeline(Stimulus.model_validate({"sources": [{"file": str(path)}]}), rig)
    with pytest.raises(StimulusError, match=r"map sends to 'hpc.radar'; a datagram goes to a target's port, "
                                            r"TARGET.PORT: hpc.lidar"):
        build_timeline(Stimulus.model_validate({"sources": [{"file": str(path), "map": {"10.0.0.9:2368": "hpc.radar"}}]}),
                       rig)


class Stack(threading.Thread):
    """Stands in for the stack's lidar component: answers every datagram on the HPC's lidar port
    with its first 4 bytes, sent to hil's brake port (as a component would, from HIL_NETS)."""

    def __init__(self, rig):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.1.2", lidar_port(rig)))
        self.sock.settimeout(0.1)
        self.reply_to = ("127.0.1.1", rig.buses["lan"].ports["brake"])
        self.got: list[bytes] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            self.got.append(data)
            self.sock.sendto(data[:4], self.reply_to)

    def close(self) -> None:
        self.stop.set()
        self.join()
        self.sock.close()


def test_packets_and_can_frames_play_on_one_timeline_are_recorded_and_export_to_pcapng(tmp_path, rig):
    n = 200
    capture = write_capture(tmp_path / "lidar.pcap", [(k * MS, "192.168.1.201", 2368, k.to_bytes(4, "little") + bytes(1202))
                                                      for k in range(n)])
    (tmp_path / "can.log").write_text("".join(f"({k * 0.0025:.6f}) can0 123#{k:02X}\n" for k in range(80)))
    stimulus = Stimulus.model_validate({"sources": [
        {"file": str(capture), "map": {"192.168.1.201:2368": "hpc.lidar"}},
        {"file": str(tmp_path / "can.log"), "map": {"can0": "chassis"}}]})
    timeline = build_timeline(stimulus, rig)
    assert {s.bus for s in timeline.steps} == {"lan", "chassis"} and len(timeline.steps) == n + 80
    stack = Stack(rig)
    stack.start()
    try:
        with RigBuses(rig, tmp_path / "run") as buses, Recorder(tmp_path / "rec.mcap", buses, ["chassis", "lan"]) as rec:
            _, report = inject(timeline, {}, buses, rec)
            deadline = 200
            while len(stack.got) < n and deadline:
                threading.Event().wait(0.01)
                deadline -= 1
    finally:
        stack.close()
    assert [int.from_bytes(d[:4], "little") for d in stack.got] == list(range(n))  # all, in order, as captured
    assert report.frames_sent == n + 80 and report.frames_early == 0 and not report.aborted
    assert report.host["lateness"]["lan"] in (KERNEL, RETURNED)
    assert len(report.packets["lan"]) == n
    assert abs(report.span_error) < 0.5  # generous: a shared host; benchmarks/packet_replay.py measures it
    recording = load(tmp_path / "rec.mcap")
    grams = recording.datagrams["lan"]
    sent = [d for d in grams if d.injected]
    answers = [d for d in grams if not d.injected]
    assert len(sent) == n and {d.dst for d in sent} == {f"127.0.1.2:{lidar_port(rig)}"}
    assert [int.from_bytes(d.data[:4], "little") for d in sent] == list(range(n))
    assert len(answers) == n and {d.dst for d in answers} == {f"127.0.1.1:{rig.buses['lan'].ports['brake']}"}
    assert len(recording.frames("chassis")) == 80
    out = tmp_path / "net.pcapng"
    export(tmp_path / "rec.mcap", out, "pcapng")
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    fields = subprocess.run(["tshark", "-r", str(out), "-T", "fields", "-e", "frame.time_epoch", "-e", "udp.dstport",
                             "-e", "udp.length"], capture_output=True, text=True, check=True).stdout.split("\n")
    rows = [line.split("\t") for line in fields if line]
    assert len(rows) == 2 * n
    anchor = recording.epoch_offset_ns
    expected = sorted(grams, key=lambda d: d.t_ns)
    assert [int(Decimal(r[0]) * 1_000_000_000) for r in rows] == [d.t_ns + anchor for d in expected]  # ns, exact
    assert [int(r[1]) for r in rows] == [int(d.dst.rsplit(":", 1)[1]) for d in expected]
    assert [int(r[2]) for r in rows] == [8 + len(d.data) for d in expected]


def test_a_capture_takes_the_timeline_features_of_can_windows_rate_loops(tmp_path, rig):
    path = write_capture(tmp_path / "c.pcap", [(k * MS, "10.0.0.9", 2368, bytes([k])) for k in range(10)])
    timeline = build_timeline(Stimulus.model_validate({"rate": 2, "loop": 2, "sources": [
        {"file": str(path), "map": {"10.0.0.9:2368": "hpc.lidar"}, "start": "2ms", "end": "6ms"}]}), rig)
    # frames 2..5 of the window, at half their gaps; the loop repeats one period (span + median gap) later
    assert [(s.t_ns, s.event.data[0]) for s in timeline.steps] == [
        (0, 2), (MS // 2, 3), (MS, 4), (3 * MS // 2, 5), (2 * MS, 2), (5 * MS // 2, 3), (3 * MS, 4), (7 * MS // 2, 5)]
    assert timeline.dropped == {"outside the window": 6}


def test_a_capture_is_filtered_by_destination_port_as_a_can_log_by_id(tmp_path, rig):
    path = write_capture(tmp_path / "c.pcap", [(k * MS, "10.0.0.9", 2368 + k % 3, bytes([k])) for k in range(9)])
    every = {f"10.0.0.9:{p}": "hpc.lidar" for p in (2368, 2369, 2370)}
    timeline = build_timeline(Stimulus.model_validate({"sources": [
        {"file": str(path), "map": every, "include_ports": [2368, 2369], "exclude_ports": [2369]}]}), rig)
    assert [s.event.data[0] for s in timeline.steps] == [0, 3, 6]
    assert timeline.dropped == {"filtered by port": 6}
