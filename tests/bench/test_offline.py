"""`hil analyze` judges logs from other tools too: a candump log and a BLF file written by python-can."""

from __future__ import annotations

import textwrap

import can
import pytest

from hil.bench.offline import analyse_offline

SUITE = textwrap.dedent('''
    name: offline
    defaults: {stack: none.yaml}
    benches:
      - name: echo
        probes:
          - {name: echo, pair: counter, window: 5ms, from: {bus: chassis, id: 0x500, byte: 0}, to: {bus: chassis, id: 0x580, byte: 0}}
        measurements:
          - {name: p50, probe: echo, stat: p50, unit: us, range: [299, 301]}
          - {name: missed, probe: echo, stat: missed, le: 1}
''')


def messages(channel):
    out = []
    for i in range(20):
        out.append(can.Message(timestamp=10 + i * 0.01, arbitration_id=0x500, data=bytes([i]), channel=channel,
                               is_extended_id=False))
        if i != 7:  # one answer missing
            out.append(can.Message(timestamp=10 + i * 0.01 + 0.0003, arbitration_id=0x580, data=bytes([i]),
                                   channel=channel, is_extended_id=False))
    return out


@pytest.mark.parametrize("name, writer, channel", [("log.log", can.CanutilsLogWriter, "can1"),
                                                    ("log.blf", can.BLFWriter, 1)])
def test_a_foreign_log_is_judged_with_its_channel_mapped(tmp_path, name, writer, channel):
    (tmp_path / "suite.yaml").write_text(SUITE)
    with writer(tmp_path / name) as w:
        for msg in messages(channel):
            w.on_message_received(msg)
    result = analyse_offline(tmp_path / name, tmp_path / "suite.yaml", "echo", tmp_path / "out",
                             {str(channel): "chassis"})
    bench = result.benches[0]
    assert bench.verdict == "pass", bench.measurements
    assert bench.probes["echo"]["stats"]["count"] == 19 and bench.probes["echo"]["stats"]["missed"] == 1
    assert (tmp_path / "out" / "results.json").is_file()


def test_a_replay_that_broke_its_promises_fails_whatever_the_bench_measures(tmp_path):
    """Frames sent early, a closed-loop wait that timed out, frames never seen on the bus: each is a
    failed measurement of its own, though the bench's own measurements pass."""
    from hil.recording import Recorder

    (tmp_path / "suite.yaml").write_text(SUITE)
    with Recorder(tmp_path / "rec.mcap") as rec:
        for msg in messages("chassis"):
            rec.frame("chassis", int(msg.timestamp * 1e9), msg.arbitration_id, 0, bytes(msg.data))
        rec.event("replay", {"frames_planned": 100, "frames_sent": 26, "frames_echoed": 25, "frames_early": 2,
                             "aborted": "wait at 0.051 s for Ack on chassis: not seen within 0.3 s",
                             "lateness_ns": {"p50": 0.0, "p99": 0.0, "max": 0.0}, "span_error": 0.0})
    bench = analyse_offline(tmp_path / "rec.mcap", tmp_path / "suite.yaml", "echo", tmp_path / "out").benches[0]
    assert bench.verdict == "fail"
    failed = {m.name: (m.value, m.limits, m.detail) for m in bench.measurements if m.outcome == "fail"}
    assert failed == {
        "replay-early": (2.0, "= 0", "2 frame(s) went out before their time"),
        "replay-aborted": (26.0, "= 100", "the replay was aborted: wait at 0.051 s for Ack on chassis: "
                                          "not seen within 0.3 s"),
        "replay-unseen": (1.0, "= 0", "1 of 26 frame(s) sent were never seen on the bus, so when they "
                                      "went out is unknown")}


FROZEN = SUITE.replace("window: 5ms", "window: 1s").replace(  # the same probe; a limit on repeats
    "{name: p50, probe: echo, stat: p50, unit: us, range: [299, 301]}", "{name: repeats, probe: echo, stat: duplicates, le: 0}"
).replace("stat: missed, le: 1}", "stat: missed, le: 0}")


def test_a_frozen_counter_is_caught_by_a_duplicates_limit(tmp_path):
    """Ten stimuli all carrying counter 5, one answer: nothing is 'missed' (the repeats count as
    duplicates), so only a limit on duplicates catches the stuck counter."""
    (tmp_path / "suite.yaml").write_text(FROZEN)
    with can.CanutilsLogWriter(tmp_path / "log.log") as w:
        for i in range(10):
            w.on_message_received(can.Message(timestamp=10 + i * 0.01, arbitration_id=0x500, data=[5],
                                              channel="can0", is_extended_id=False))
        w.on_message_received(can.Message(timestamp=10.095, arbitration_id=0x580, data=[5], channel="can0",
                                          is_extended_id=False))  # after them all: each could claim it
    bench = analyse_offline(tmp_path / "log.log", tmp_path / "suite.yaml", "echo", tmp_path / "out",
                            {"can0": "chassis"}).benches[0]
    judged = {m.name: (m.value, m.outcome) for m in bench.measurements}
    assert judged == {"missed": (0.0, "pass"), "repeats": (9.0, "fail")}
