"""Probe pairing on synthetic recordings with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from hil.analysis.probes import MISSING, Pairing, chain, pair_counter, pair_next, run_probe
from hil.spec.suite import Probe

from .conftest import make_frames, merge

MS = 1_000_000


def probe(**kw) -> Probe:
    return Probe.model_validate(kw)


def test_next_pairs_the_first_response_and_counts_misses():
    stim = np.array([0, 10, 20, 30]) * MS
    resp = np.array([2, 13, 45]) * MS
    out = pair_next(stim, resp, window_ns=5 * MS)
    # 20 ms has no response within 5 ms (the next is at 45): missed; 30 ms likewise
    assert out.tolist() == [2 * MS, 13 * MS, MISSING, MISSING]
    p = Pairing(stim, out)
    assert p.latency_ns.tolist() == [2 * MS, 3 * MS]
    assert p.missed == 2


def test_next_with_no_responses_misses_everything():
    p = Pairing(np.array([1, 2]), pair_next(np.array([1, 2]), np.array([], np.int64), 10))
    assert p.missed == 2 and len(p.latency_ns) == 0


def test_counter_pairs_by_value_not_by_order():
    # responses come out of order: counter 2 is answered before counter 1
    stim_t, stim_c = np.array([0, 1, 2]) * MS, np.array([0, 1, 2])
    resp_t, resp_c = np.array([3, 4, 6]) * MS, np.array([0, 2, 1])
    out, dup = pair_counter(stim_t, stim_c, resp_t, resp_c, window_ns=10 * MS)
    assert out.tolist() == [3 * MS, 6 * MS, 4 * MS]
    assert dup == 0


def test_counter_missed_response_is_counted_never_dropped():
    stim_t, stim_c = np.arange(5) * MS, np.arange(5)
    resp_t, resp_c = np.array([1, 2, 4, 5]) * MS + MS // 2, np.array([0, 1, 3, 4])  # counter 2 never answered
    out, dup = pair_counter(stim_t, stim_c, resp_t, resp_c, window_ns=10 * MS)
    p = Pairing(stim_t, out, dup)
    assert p.missed == 1
    assert p.paired.tolist() == [True, True, False, True, True]
    assert p.latency_ns.tolist() == [1.5 * MS, 1.5 * MS, 1.5 * MS, 1.5 * MS]


def test_counter_duplicate_stimulus_keeps_the_earliest_and_counts_the_other():
    # the sensor sends counter 7 twice; the ECU answers once
    stim_t, stim_c = np.array([0, 1, 2]) * MS, np.array([6, 7, 7])
    resp_t, resp_c = np.array([2, 4]) * MS, np.array([6, 7])
    out, dup = pair_counter(stim_t, stim_c, resp_t, resp_c, window_ns=10 * MS)
    p = Pairing(stim_t, out, dup)
    assert out.tolist() == [2 * MS, 4 * MS, MISSING]
    assert (p.duplicates, p.missed) == (1, 0)
    assert p.latency_ns.tolist() == [2 * MS, 3 * MS]


def test_counter_wraparound_pairs_each_lap_with_its_own_response():
    n, period, delay = 40, 10 * MS, 3 * MS
    stim_t = np.arange(n) * period
    ctr = np.arange(n) % 16  # a 4-bit rolling counter laps twice and a half
    out, dup = pair_counter(stim_t, ctr, stim_t + delay, ctr, window_ns=50 * MS)
    assert (out - stim_t).tolist() == [delay] * n
    assert dup == 0


def test_counter_window_rejects_the_next_lap():
    # counter 3's own response is lost; the next lap's counter-3 response is 160 ms later: a miss
    n, period = 32, 10 * MS
    stim_t, ctr = np.arange(n) * period, np.arange(n) % 16
    keep = np.arange(n) != 3
    out, _ = pair_counter(stim_t, ctr, (stim_t + MS)[keep], ctr[keep], window_ns=100 * MS)
    assert out[3] == MISSING
    assert int(np.count_nonzero(out == MISSING)) == 1


def test_counter_probe_reads_dbc_signals_and_wraps_modulo(db):
    radar = [(i * 10 * MS, 0x100, bytes(7) + bytes([i % 16])) for i in range(20)]
    brake = [(i * 10 * MS + 4 * MS, 0x200, bytes(5) + bytes([(i % 16)]) + bytes(2)) for i in range(20) if i != 5]
    buses = {"sensor": make_frames("sensor", radar), "chassis": make_frames("chassis", brake)}
    p = probe(name="radar-to-brake", pair="counter", window="50ms",
              **{"from": {"bus": "sensor", "message": "Radar", "signal": "Counter"}},
              to={"bus": "chassis", "message": "BrakeCmd", "signal": "Counter"})
    pairing = run_probe(p, buses, db)
    assert pairing.missed == 1
    assert set(pairing.latency_ns.tolist()) == {4 * MS}


@pytest.mark.parametrize("modulo, paired", [(None, 16), (16, 40)])
def test_byte_counter_probe_without_dbc_compares_modulo(db, modulo, paired):
    # the stimulus carries an 8-bit counter, the response only its low 4 bits
    stim = [(i * MS, 0x10, bytes([i])) for i in range(40)]
    resp = [(i * MS + 300_000, 0x11, bytes([0, i % 16])) for i in range(40)]
    buses = {"can": merge("can", make_frames("can", stim), make_frames("can", resp))}
    p = probe(name="echo", pair="counter", modulo=modulo, window="1ms",
              **{"from": {"bus": "can", "id": 0x10, "byte": 0}}, to={"bus": "can", "id": 0x11, "byte": 1})
    pairing = run_probe(p, buses, db)
    assert pairing.latency_ns.tolist() == [300_000] * paired
    assert pairing.missed == 40 - paired


def test_edge_probe_pairs_threshold_crossings(db):
    # radar distance falls through 20 m at 30 ms and again (after rising) at 80 ms
    dist = [50, 40, 30, 19, 15, 30, 40, 30, 10, 5]
    radar = [(i * 10 * MS, 0x100, int(d * 100).to_bytes(2, "little") + bytes(6)) for i, d in enumerate(dist)]
    # brake pressure (Motorola, 0.1 bar) rises through 10 bar at 37 ms and 86 ms
    pressure = [(t * MS, 0x200, int(p * 10).to_bytes(2, "big") + bytes(6))
                for t, p in [(5, 0), (37, 50), (60, 0), (86, 80)]]
    buses = {"sensor": make_frames("sensor", radar), "chassis": make_frames("chassis", pressure)}
    p = probe(name="ttc", pair="edge", window="20ms",
              **{"from": {"bus": "sensor", "message": "Radar", "signal": "Distance", "threshold": 20,
                          "direction": "falling"}},
              to={"bus": "chassis", "message": "BrakeCmd", "signal": "Pressure", "threshold": 10})
    pairing = run_probe(p, buses, db)
    assert pairing.stimulus_ns.tolist() == [30 * MS, 80 * MS]
    assert pairing.latency_ns.tolist() == [7 * MS, 6 * MS]


def test_chain_gives_per_hop_breakdown_that_adds_up():
    # sensor (0, 10, 20 ms) → command (+2 ms) → actuator (+1, +3, missing)
    sensor = np.array([0, 10, 20]) * MS
    command = sensor + 2 * MS
    actuator = np.array([3, 15]) * MS
    hop1 = Pairing(sensor, pair_next(sensor, command, 5 * MS))
    hop2 = Pairing(command, pair_next(command, actuator, 5 * MS))
    c = chain([hop1, hop2])
    assert c.missed == 1
    assert c.hops["hop1"].tolist() == [2 * MS, 2 * MS]
    assert c.hops["hop2"].tolist() == [1 * MS, 3 * MS]
    assert c.total_ns.tolist() == [3 * MS, 5 * MS]


def test_a_chain_does_not_count_the_repeats_of_a_paired_stimulus_as_missed():
    """A camera frame's packets all carry its RTP timestamp: the first is paired, the rest are
    duplicates of it, and neither the probe nor the chain counts them as missed."""
    packets = np.array([0, 1, 2, 33, 34, 35]) * MS
    stamp = np.array([0, 0, 0, 1, 1, 1])
    objects = np.array([10, 40]) * MS
    response, duplicates = pair_counter(packets, stamp, objects, np.array([0, 1]), 100 * MS)
    hop1 = Pairing(packets, response, duplicates)
    requests = objects + MS
    hop2 = Pairing(objects, pair_next(objects, requests, 5 * MS))
    c = chain([hop1, hop2])
    assert (hop1.missed, c.missed) == (0, 0)
    assert c.total_ns.tolist() == [11 * MS, 8 * MS]


@pytest.mark.parametrize("n", [0, 1])
def test_chain_with_an_empty_hop_misses_all(n):
    s = np.arange(3) * MS
    empty = Pairing(np.zeros(0, np.int64), np.zeros(0, np.int64))
    c = chain([Pairing(s, s + 1), empty] if n else [Pairing(s, np.full(3, MISSING)), empty])
    assert c.missed == 3 and len(c.total_ns) == 0
