"""`hil analyze` judges logs from other tools too (a candump log and a BLF file written by
python-can), and hil's own recordings with their harness figures: a harness over its budget is an
``error``, never the stack's ``fail``."""

from __future__ import annotations

import json
import re
import textwrap
from functools import partial

import can
import pytest

from hil.bench.offline import analyse_offline
from tests.hilcli import DEFAULT_HISTORY, PLAIN
from tests.hilcli import hil as run_hil
from tests.report.results_factory import BUSY, harness_events

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


def _record(path, events=(), answered=True, metadata=None):
    """A recording, written with the real Recorder: the echo stimulus and answers on chassis, and
    ``events`` (kind, data)."""
    from hil.recording import Recorder

    with Recorder(path, metadata=metadata) as rec:
        for msg in messages("chassis"):
            if answered or msg.arbitration_id == 0x500:
                rec.frame("chassis", int(msg.timestamp * 1e9), msg.arbitration_id, 0, bytes(msg.data))
        for kind, data in events:
            rec.event(kind, data)
    return path


REPLAY = {"frames_planned": 20, "frames_sent": 20, "frames_echoed": 20, "frames_early": 0,
          "lateness_ns": {"p50": 1000.0, "p99": 2000.0, "max": 2500.0}, "span_error": 0.0}


def test_a_replay_that_broke_the_harness_promises_is_an_error_never_a_fail(tmp_path):
    """Frames sent early and frames never seen on the bus are the harness's broken promises: the
    bench is an ``error`` saying so, its own measurements shown but not judged (one would fail)."""
    (tmp_path / "suite.yaml").write_text(SUITE)
    replay = {**REPLAY, "frames_sent": 26, "frames_echoed": 25, "frames_early": 2}
    rec = _record(tmp_path / "rec.mcap", [("replay", replay)], answered=False)
    bench = analyse_offline(rec, tmp_path / "suite.yaml", "echo", tmp_path / "out").benches[0]
    assert (bench.verdict, bench.error_kind, bench.phase) == ("error", "HarnessError", "analyse")
    assert bench.error == ("harness over budget: 2 replay frame(s) went out before their time; 1 of 26 replay "
                           "frame(s) sent were never seen on the bus, so when they went out is unknown")
    assert {m.name: m.outcome for m in bench.measurements} == {"p50": "unjudged", "missed": "unjudged"}
    assert "would be fail: 20 is not ≤ 1" in bench.measurements[1].detail


def test_a_closed_loop_wait_that_timed_out_stays_the_stacks_fail(tmp_path):
    """The stack never answered: that is the stack's, a failed measurement, whatever else passes."""
    (tmp_path / "suite.yaml").write_text(SUITE)
    replay = {**REPLAY, "frames_planned": 100, "aborted": "wait at 0.051 s for Ack on chassis: not seen within 0.3 s"}
    bench = analyse_offline(_record(tmp_path / "rec.mcap", [("replay", replay)]), tmp_path / "suite.yaml", "echo",
                            tmp_path / "out").benches[0]
    assert bench.verdict == "fail"
    failed = {m.name: (m.value, m.limits, m.detail) for m in bench.measurements if m.outcome == "fail"}
    assert failed == {"replay-aborted": (20.0, "= 100", "the replay was aborted: wait at 0.051 s for Ack on chassis: "
                                                        "not seen within 0.3 s")}


hil = partial(run_hil, env=PLAIN | DEFAULT_HISTORY)


def test_a_harness_over_its_budget_makes_hil_analyze_exit_3_not_1(tmp_path):
    """The echo answers 300 µs late, outside the bench's [299, 301] µs... but the emulated bus
    delivered frames up to 3.2 ms late on a busy host: the bench is an error naming the harness and
    the host's load (exit 3), never the stack's fail (exit 1). With a budget that allows it, the
    stack's own figures are judged again."""
    late = SUITE.replace("range: [299, 301]", "range: [100, 200]")
    (tmp_path / "suite.yaml").write_text(late)
    rec = _record(tmp_path / "rec.mcap", [("replay", REPLAY),
                                          *harness_events([200] * 90 + [3200] * 10, [4, 5], BUSY)])
    r = hil("analyze", str(rec), "--suite", "suite.yaml", "--bench", "echo", "--out", "out", cwd=tmp_path)
    assert r.returncode == 3, r.stdout + r.stderr
    bench = json.loads((tmp_path / "out" / "results.json").read_text())["benches"][0]
    assert bench["error"].startswith("host overloaded, harness over budget: delivery error p99 3.2 ms on bus "
                                     "chassis, budget 1 ms (host load — inject start: CPU pressure 87 %, load 4.10 on 2 CPUs;")
    assert [m["outcome"] for m in bench["measurements"]] == ["unjudged", "unjudged"]
    assert re.search(r"unjudged p50 = 300 us ± harness 3\.2\d* ms\s+limits \[100, 200\] us", r.stdout), r.stdout

    lenient = late.replace("  - name: echo\n", "  - name: echo\n    harness: {p99: 5ms}\n")
    (tmp_path / "suite.yaml").write_text(lenient)
    r = hil("analyze", str(rec), "--suite", "suite.yaml", "--bench", "echo", "--out", "again", cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    bench = json.loads((tmp_path / "again" / "results.json").read_text())["benches"][0]
    assert (bench["verdict"], bench["harness"]["breaches"]) == ("fail", [])
    assert bench["harness"]["budget"] == {"p50_ns": None, "p99_ns": 5_000_000, "max_ns": 20_000_000}  # max: default


def test_each_latency_carries_the_harness_error_that_can_enter_it(tmp_path):
    """Stimulus and answer on chassis: the stack got the stimulus late (delivery) and its answer
    was stamped late (send); the probe's bound adds their p99 and their maxima."""
    (tmp_path / "suite.yaml").write_text(SUITE)
    rec = _record(tmp_path / "rec.mcap", [("replay", REPLAY), *harness_events([20, 30, 40, 85], [3, 4, 6])])
    bench = analyse_offline(rec, tmp_path / "suite.yaml", "echo", tmp_path / "out").benches[0]
    assert bench.verdict == "pass"
    assert bench.probes["echo"]["harness"] == {"p99_ns": 91_000, "max_ns": 91_000,
                                               "parts": ["delivery on chassis", "send on chassis"]}
    assert [m.harness_ns for m in bench.measurements] == [91_000, None]  # a count carries none


def test_a_log_from_another_tool_has_no_harness_figures_and_says_so(tmp_path):
    (tmp_path / "suite.yaml").write_text(SUITE)
    with can.CanutilsLogWriter(tmp_path / "log.log") as w:
        for msg in messages("can1"):
            w.on_message_received(msg)
    bench = analyse_offline(tmp_path / "log.log", tmp_path / "suite.yaml", "echo", tmp_path / "out",
                            {"can1": "chassis"}).benches[0]
    assert bench.harness["measured"] is False and bench.harness["note"].startswith("not measured: ")
    assert bench.probes["echo"]["harness"]["p99_ns"] is None
    assert all(m.harness_ns is None for m in bench.measurements)


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


def test_the_message_names_the_first_breaches_and_counts_the_rest(tmp_path):
    (tmp_path / "suite.yaml").write_text(SUITE)
    replay = {**REPLAY, "frames_sent": 26, "frames_echoed": 25, "frames_early": 2,
              "lateness_ns": {"p50": 1000.0, "p99": 2e6, "max": 30e6}}
    rec = _record(tmp_path / "rec.mcap", [("replay", replay)])
    bench = analyse_offline(rec, tmp_path / "suite.yaml", "echo", tmp_path / "out").benches[0]
    assert len(bench.harness["breaches"]) == 4
    assert bench.error == ("harness over budget: 2 replay frame(s) went out before their time; 1 of 26 replay "
                           "frame(s) sent were never seen on the bus, so when they went out is unknown; replay "
                           "lateness p99 2 ms, budget 1 ms; 1 more")


def test_a_frame_handed_out_before_its_end_of_frame_breaks_the_harness_promise(tmp_path):
    (tmp_path / "suite.yaml").write_text(SUITE)
    events = harness_events([20, 30], [3])
    early = json.loads(json.dumps(events[1][1]))
    early["buses"]["chassis"]["delivery"]["early"] = 2
    rec = _record(tmp_path / "rec.mcap", [("replay", REPLAY), events[0], ("harness", early)])
    bench = analyse_offline(rec, tmp_path / "suite.yaml", "echo", tmp_path / "out").benches[0]
    assert bench.verdict == "error"
    assert bench.harness["breaches"] == ["2 frame(s) handed out before their end of frame on bus chassis"]


def test_hil_analyze_keeps_the_rig_the_recording_was_made_on(tmp_path):
    """The reports name the rig from the recording's metadata (a foreign log names none)."""
    (tmp_path / "suite.yaml").write_text(SUITE)
    result = analyse_offline(_record(tmp_path / "rec.mcap", metadata={"rig": "sim-lab-3"}), tmp_path / "suite.yaml", "echo", tmp_path / "out")
    assert result.rig == "sim-lab-3"
    assert json.loads((tmp_path / "out" / "results.json").read_text())["rig"] == "sim-lab-3"
