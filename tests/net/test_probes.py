"""Probes from packets: a datagram (port + a counter field at an offset, or its RTP header) paired
with the CAN frame it caused, alone and in a chain across hops; mistakes refused at their place."""

from __future__ import annotations

import numpy as np
import pytest

from hil.analysis.probes import run_chain, run_probe
from hil.analysis.signals import Database
from hil.recording.frames import DATA_WIDTH, Frames
from hil.recording.loader import Datagram
from hil.spec.suite import Chain, Probe, Suite

MS = 1_000_000


def rtp(seq: int, ts: int) -> bytes:
    return bytes([0x80, 26]) + seq.to_bytes(2, "big") + ts.to_bytes(4, "big") + bytes(4) + b"jpeg"


def can(bus: str, rows: list[tuple[int, int, bytes]]) -> Frames:
    data = np.zeros((len(rows), DATA_WIDTH), np.uint8)
    for i, (_, _, d) in enumerate(rows):
        data[i, :len(d)] = list(d)
    return Frames.from_arrays(bus, [t for t, _, _ in rows], [i for _, i, _ in rows], [0] * len(rows),
                              [len(d) for _, _, d in rows], data)


# camera frames 0..9 every 33 ms (RTP sequence 1000+k, a counter after the RTP header at offset 12, little endian);
# the planner answers frame k on CAN 0x200 with byte 0 = k, 5 ms later; the brake acts 2 ms after that
# on 0x300, also carrying k. Frame 7's answer never comes.
GRAMS = {"lan": [Datagram(k * 33 * MS, "127.0.1.1:5000", "127.0.1.2:5004",
                          rtp(1000 + k, 90 * 33 * k)[:12] + k.to_bytes(2, "little") + b"jpeg", True)
                 for k in range(10)]
         + [Datagram(k * 33 * MS + 1, "127.0.1.2:1", "127.0.1.1:6000", b"x", False) for k in range(10)]}
BUSES = {"chassis": can("chassis", [(k * 33 * MS + 5 * MS, 0x200, bytes([k])) for k in range(10) if k != 7]
                        + [(k * 33 * MS + 7 * MS, 0x300, bytes([k])) for k in range(10) if k != 7])}


def probe(**kw) -> Probe:
    return Probe.model_validate({"name": "p", "pair": "counter", "window": "20ms", **kw})


def test_the_rtp_header_and_fields_are_read_in_their_byte_order():
    from hil.analysis.probes import datagram_column
    from hil.spec.suite import ProbeEnd

    def values(**kw):
        return list(datagram_column(ProbeEnd.model_validate({"bus": "lan", "port": 5004, **kw}), GRAMS).value)

    assert values(rtp="timestamp") == [90 * 33 * k for k in range(10)]
    assert values(rtp="sequence") == [1000 + k for k in range(10)]
    assert values(offset=12, size=2, order="little") == list(range(10))
    assert values(offset=12, size=2) == [k << 8 for k in range(10)]
    assert values(offset=16, size=4) == []  # too short for the field: left out


@pytest.mark.parametrize("stimulus", [{"offset": 12, "size": 2, "order": "little"}, {"rtp": "sequence"}])
def test_a_datagram_pairs_with_the_can_frame_carrying_its_counter(stimulus):
    p = probe(**{"from": {"bus": "lan", "port": 5004, **stimulus}, "to": {"bus": "chassis", "id": 0x200, "byte": 0}},
              modulo=1000 if "rtp" in stimulus else None)  # RTP sequence 1000+k against k: compared modulo 1000
    pairing = run_probe(p, BUSES, Database(), GRAMS)
    assert list(pairing.stimulus_ns) == [k * 33 * MS for k in range(10)]
    assert list(pairing.latency_ns) == [5 * MS] * 9 and pairing.missed == 1


def test_where_keeps_only_the_datagrams_whose_payload_meets_it():
    # lidar-like packets: 3 records of 4 bytes (a flag byte, then 3 returns' levels); k % 3 == 1 shows the object
    # (a level 100 somewhere), and only those are answered on 0x210 with byte 0 = the counter at offset 12
    grams = {"lan": [Datagram(k * MS, "127.0.1.1:5000", "127.0.1.2:2368",
                              bytes([0xEE, 20, 100 if k % 3 == 1 else 20, 0] * 3)[:12] + bytes([k]), True)
                     for k in range(30)]}
    buses = {"chassis": can("chassis", [(k * MS + 200_000, 0x210, bytes([k])) for k in range(30) if k % 3 == 1])}
    end = {"bus": "lan", "port": 2368, "offset": 12, "size": 1}
    to = {"bus": "chassis", "id": 0x210, "byte": 0}
    every = run_probe(probe(**{"from": end, "to": to}), buses, Database(), grams)
    assert every.missed == 20  # the packets that do not show the object, counted as missed
    shows = {"offset": 1, "repeat": [[4, 3], [1, 3]], "op": ">=", "value": 100}
    seen = run_probe(probe(**{"from": {**end, "where": [shows, {"offset": 0, "value": 0xEE}]}, "to": to}),
                     buses, Database(), grams)
    assert list(seen.stimulus_ns) == [k * MS for k in range(1, 30, 3)]
    assert list(seen.latency_ns) == [200_000] * 10 and seen.missed == 0
    none = run_probe(probe(**{"from": {**end, "where": [{**shows, "op": ">", "value": 100}]}, "to": to}),
                     buses, Database(), grams)
    assert len(none.stimulus_ns) == 0


def test_next_pairing_and_a_chain_run_from_a_datagram_across_hops():
    camera = probe(name="camera", pair="next", **{"from": {"bus": "lan", "port": 5004},
                                                  "to": {"bus": "chassis", "id": 0x200}})
    brake = probe(name="brake", pair="next", **{"from": {"bus": "chassis", "id": 0x200},
                                                "to": {"bus": "chassis", "id": 0x300}})
    pairings = {p.name: run_probe(p, BUSES, Database(), GRAMS) for p in (camera, brake)}
    c = run_chain(Chain(name="frame-to-brake", probes=["camera", "brake"]), pairings)
    assert list(c.total_ns) == [7 * MS] * 9 and c.missed == 1
    assert list(c.hops["camera"]) == [5 * MS] * 9 and list(c.hops["brake"]) == [2 * MS] * 9
    to_hil = run_probe(Probe.model_validate({"name": "echo", "pair": "next", "window": "1ms",
                                             "from": {"bus": "lan", "port": 5004}, "to": {"bus": "lan", "port": 6000}}),
                       BUSES, Database(), GRAMS)
    assert list(to_hil.latency_ns) == [1] * 10


SUITE = {"name": "s", "defaults": {"stack": "x.yaml"}, "benches": [{"name": "b", "probes": [
    {"name": "p", "pair": "counter", "from": {"bus": "lan", "port": 5004, "rtp": "sequence"},
     "to": {"bus": "chassis", "id": 0x200, "byte": 0}}]}]}


@pytest.mark.parametrize("change, loc, message", [
    ({"rtp": None}, ("benches", 0, "probes", 0, "from"),
     "counter pairing on datagrams needs 'offset' (with 'size', 'order') or 'rtp'"),
    ({"id": 5}, ("benches", 0, "probes", 0, "from", "id"),
     "a datagram end (port 5004) has no 'id': it is matched by port, its counter read at 'offset' or from 'rtp'"),
    ({"offset": 3}, ("benches", 0, "probes", 0, "from"), "expected one of 'offset' or 'rtp'"),
    ({"where": [{"offset": 65_000, "repeat": [[100, 12]], "value": 1}]},
     ("benches", 0, "probes", 0, "from", "where", 0),
     "the field's last repeat ends at byte 66,101, beyond the largest UDP payload (65,507 bytes)"),
    ({"where": [{"offset": 0, "size": 2, "value": 70_000}]},
     ("benches", 0, "probes", 0, "from", "where", 0, "value"),
     "a 2-byte field holds at most 65,535, so 70,000 can never compare as meant"),
    ({"port": None, "rtp": None, "id": 5, "byte": 0, "where": [{"offset": 0, "value": 1}]},
     ("benches", 0, "probes", 0, "from"),
     "'offset', 'rtp' and 'where' read a datagram: they need the network's 'port'"),
])
def test_datagram_probe_mistakes_are_located(change, loc, message):
    bench = SUITE["benches"][0]
    end = {k: v for k, v in {**bench["probes"][0]["from"], **change}.items() if v is not None}
    suite = Suite.model_validate({**SUITE, "benches": [{**bench, "probes": [{**bench["probes"][0], "from": end}]}]})
    assert (loc, message) in suite.problems()


def test_a_port_on_a_can_bus_or_a_can_end_on_a_network_is_refused_against_the_rig():
    from hil.spec.rig import Rig

    rig = Rig.model_validate({"name": "r", "buses": {"chassis": {"kind": "can", "emulated": True},
                                                     "lan": {"kind": "ethernet", "emulated": True}}})
    suite = Suite.model_validate(SUITE)
    assert suite.problems_on(rig) == []
    swapped = Suite.model_validate({**SUITE, "benches": [{"name": "b", "probes": [
        {"name": "p", "pair": "next", "from": {"bus": "chassis", "port": 5004}, "to": {"bus": "lan", "id": 0x200}}]}]})
    assert swapped.problems_on(rig) == [
        (("benches", 0, "probes", 0, "from", "bus"), "'port' names datagrams of a network, but 'chassis' is a can bus"),
        (("benches", 0, "probes", 0, "to", "bus"), "expected a CAN bus, but 'lan' is a ethernet bus")]


def test_a_capture_maps_to_target_ports_and_a_wrong_one_is_refused_against_the_rig():
    from hil.spec.rig import Rig

    rig = Rig.model_validate({"name": "r", "buses": {"lan": {"kind": "ethernet", "emulated": True}}, "targets": {
        "hpc": {"kind": "hpc", "reach": {"via": "emulated"}, "networks": {"lan": {"ports": {"lidar": 2368}}}}}})
    suite = Suite.model_validate({"name": "s", "defaults": {"stack": "x.yaml"}, "benches": [{"name": "b", "stimulus": {
        "sources": [{"file": "l.pcap", "map": {"10.0.0.1:2368": "hpc.lidar", "10.0.0.1:2369": "hpc.radar"}}]}}]})
    assert suite.problems_on(rig) == [(("benches", 0, "stimulus", "sources", 0, "map", "10.0.0.1:2369"),
                                       "unknown target port 'hpc.radar'; a datagram goes to TARGET.PORT: hpc.lidar")]
