"""The injector on a real simbus rig: what it sends is recorded in order, on time (never early),
closed-loop waits hold the timeline, overrides show in the decoded recording, serial captures reach
the device end of a pty, and BLF → replay → record → BLF export round-trips."""

from __future__ import annotations

import os
import select
import threading
from pathlib import Path

import can
import cantools
import numpy as np
import pytest

from hil.buses import RigBuses
from hil.clock import now_ns
from hil.recording import Recorder, load
from hil.recording.export import export
from hil.canframe import FLAG_TX
from hil.spec.rig import Rig
from hil.spec.suite import Stimulus
from hil.stimulus import serialcap
from hil.stimulus.events import SerialEvent
from hil.stimulus.injector import play
from hil.stimulus.readers import read_source
from hil.stimulus.report import ReplayReport
from hil.stimulus.timeline import build_timeline

MS = 1_000_000
DBC = """VERSION ""
BU_: SENSOR
BO_ 256 Speed: 4 SENSOR
 SG_ VehicleSpeed : 0|16@1+ (0.01,0) [0|655.35] "km/h" SENSOR
 SG_ Counter : 16|8@1+ (1,0) [0|255] "" SENSOR
BO_ 512 Ack: 1 SENSOR
 SG_ Ready : 0|8@1+ (1,0) [0|255] "" SENSOR
"""
RIG = Rig.model_validate({"name": "sim", "buses": {
    "chassis": {"kind": "can", "emulated": True, "bitrate": 1_000_000},
    "body": {"kind": "can", "emulated": True, "bitrate": 500_000},
    "console": {"kind": "serial", "emulated": True, "baudrate": 1_000_000}}})


@pytest.fixture(scope="module")
def buses(tmp_path_factory):
    with RigBuses(RIG, tmp_path_factory.mktemp("run")) as b:
        yield b


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    db = cantools.database.load_string(DBC, "dbc")
    speed = db.get_message_by_name("Speed")
    lines = [f"({i * 0.002:.6f}) can0 100#{speed.encode({'VehicleSpeed': 1.0 + i, 'Counter': i}).hex()}\n"
             for i in range(100)]
    lines += [f"({0.001 + i * 0.01:.6f}) can1 {0x300 + i:03X}#{i:02X}\n" for i in range(20)]
    log = tmp_path / "drive.log"
    log.write_text("".join(sorted(lines, key=lambda l: float(l[1:l.index(")")]))))
    dbc = tmp_path / "s.dbc"
    dbc.write_text(DBC)
    return {"log": log, "dbc": dbc}


def replay_and_record(buses, stimulus: dict, path: Path, during=None):
    tl = build_timeline(Stimulus.model_validate(stimulus), RIG)
    with Recorder(path, buses, ["chassis", "body"]) as rec:
        report = play(tl, buses)
        for bus, echoes in report.echoes.items():
            rec.injected(bus, echoes)
    return tl, report, load(path)


def test_replay_is_recorded_in_order_on_time_and_marked_tx(buses, files, tmp_path):
    stim = {"sources": [{"file": str(files["log"]), "map": {"can0": "chassis", "can1": "body"}}],
            "dbc": [str(files["dbc"])],
            "overrides": [{"message": "Speed", "signal": "VehicleSpeed", "action": "set", "value": 42.0,
                           "start": "20ms", "end": "40ms"},
                          {"message": "Speed", "action": "drop", "start": "100ms", "end": "120ms"}]}
    tl, report, rec = replay_and_record(buses, stim, tmp_path / "r.mcap")
    assert report.frames_sent == report.frames_planned == len(tl.steps) == 110
    assert report.frames_early == 0 and min(report.lateness_ns) >= 0
    chassis, body = rec.frames("chassis"), rec.frames("body")
    assert len(chassis) == 90 and len(body) == 20
    assert np.all(chassis.flags & FLAG_TX) and np.all(body.flags & FLAG_TX)
    assert body.id.tolist() == [0x300 + i for i in range(20)]
    # the recorder saw each frame at the same end-of-frame time the injector's echo reported, and
    # that time is the planned one plus a lateness that is never negative
    for bus, frames in (("chassis", chassis), ("body", body)):
        assert frames.t_ns.tolist() == [t for t, *_ in report.echoes[bus]]
        late = frames.t_ns - report.start_ns - np.array([s.t_ns for s in tl.steps if s.bus == bus])
        assert late.min() >= 0 and late.max() <= report.stat("max")
    speed = cantools.database.load_string(DBC, "dbc").get_message_by_name("Speed")
    for t, row, n in zip(chassis.t_ns - report.start_ns, chassis.data, chassis.dlc):
        sig = speed.decode(bytes(row[:n]))
        at_ms = sig["Counter"] * 2
        assert not 100 <= at_ms < 120  # the dropout
        assert sig["VehicleSpeed"] == pytest.approx(42.0 if 20 <= at_ms < 40 else 1.0 + sig["Counter"])
        assert t >= at_ms * MS  # never early



def responder(buses, trigger_id: int, reply: can.Message, stop: threading.Event, delay: float = 0.2):
    """A node on 'body' that answers ``reply`` ``delay`` s after it sees ``trigger_id`` on chassis."""
    chassis = buses.open_can("chassis")
    body = buses.open_can("body")
    try:
        while not stop.is_set():
            msg = chassis.recv(0.05)
            if msg is not None and msg.arbitration_id == trigger_id:
                stop.wait(delay)
                body.send(reply)
                return
    finally:
        chassis.shutdown()
        body.shutdown()


def wait_stimulus(files, timeout: str) -> dict:
    return {"sources": [{"file": str(files["log"]), "map": {"can0": "chassis", "can1": "body"},
                         "include_ids": ["0x100"]}],
            "dbc": [str(files["dbc"])],
            "waits": [{"at": "51ms", "until": {"bus": "body", "message": "Ack", "signal": "Ready", "op": ">=",
                                                "value": 2}, "timeout": timeout}]}


def test_closed_loop_wait_holds_the_timeline_until_the_condition_appears(buses, files, tmp_path):
    stop = threading.Event()
    # the responder answers 200 ms after the first Speed frame, long after the wait (51 ms) began
    t = threading.Thread(target=responder, args=(buses, 0x100, can.Message(arbitration_id=0x200, data=[3],
                                                                            is_extended_id=False), stop))
    t.start()
    try:
        tl, report, rec = replay_and_record(buses, wait_stimulus(files, "5s"), tmp_path / "w.mcap")
    finally:
        stop.set()
        t.join()
    assert report.aborted is None and report.frames_sent == 100 and report.frames_early == 0
    assert [w["met"] for w in report.waits] == [True]
    chassis, body = rec.frames("chassis"), rec.frames("body")
    ack = body.with_id(0x200)
    assert len(ack) == 1 and not ack.flags[0] & FLAG_TX
    before = chassis.t_ns[chassis.t_ns < ack.t_ns[0]]
    after = chassis.t_ns[chassis.t_ns > ack.t_ns[0]]
    assert len(before) == 26 and len(after) == 74  # frames at 0..50 ms went out, the rest waited
    assert report.waits[0]["waited_ns"] > 0
    # the timeline resumed from the Ack: frame k after it is planned (52 − 51) + 2·k ms later
    planned = ack.t_ns[0] + 1 * MS + 2 * MS * np.arange(74)
    assert np.all(after >= planned)


def test_a_wait_that_times_out_aborts_the_replay_and_says_why(buses, files, tmp_path):
    tl, report, rec = replay_and_record(buses, wait_stimulus(files, "300ms"), tmp_path / "t.mcap")
    assert report.aborted == "wait at 0.051 s for Ack Ready >= 2 on body: not seen within 0.3 s"
    assert report.frames_sent == 26 and len(rec.frames("chassis")) == 26
    assert report.waits[0]["met"] is False
    assert report.over_budget({}) == [f"the replay was aborted: {report.aborted}"]


def test_frames_never_seen_on_the_bus_are_over_any_budget():
    """A real adapter that loses or does not echo frames: their lateness is unknown, not zero."""
    report = ReplayReport(frames_planned=10, frames_sent=10, frames_echoed=0, lateness_ns=[],
                          span_planned_ns=9, span_actual_ns=0, start_ns=0)
    assert report.over_budget({"p99": 1000.0}) == ["10 of 10 frame(s) sent were never seen on the bus"]


def test_serial_capture_reaches_the_device_end_on_time(buses, tmp_path):
    cap = tmp_path / "c.serial"
    chunks = [SerialEvent(i * 5 * MS, "uart", f"line {i}\n".encode()) for i in range(10)]
    serialcap.write(cap, chunks)
    tl = build_timeline(Stimulus.model_validate({"sources": [{"file": str(cap)}]}), RIG)
    fd = os.open(buses.serial_port("console", "device"), os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        report = play(tl, buses)
        got = b""
        while select.select([fd], [], [], 1.0)[0]:
            got += os.read(fd, 4096)
            if got.endswith(b"line 9\n"):
                break
    finally:
        os.close(fd)
    assert got == b"".join(c.data for c in chunks)
    assert report.frames_sent == 10 and report.frames_early == 0


def test_blf_replay_record_export_round_trip(buses, tmp_path):
    src = tmp_path / "in.blf"
    msgs = [can.Message(timestamp=1_000.0 + i * 0.0015, arbitration_id=0x10 + i % 9 if i % 4 else 0x1ABCDE0 + i,
                        is_extended_id=not i % 4, data=bytes([i % 256, (7 * i) % 256][: i % 3]), channel=1)
            for i in range(300)]
    with can.Logger(src) as w:
        for m in msgs:
            w.on_message_received(m)
    tl = build_timeline(Stimulus.model_validate({"sources": [{"file": str(src), "map": {"1": "chassis"}}]}), RIG)
    progress = []
    with Recorder(tmp_path / "r.mcap", buses, ["chassis"]) as rec:
        report = play(tl, buses, on_progress=lambda p: progress.append((now_ns(), p)))
        rec.injected("chassis", report.echoes["chassis"])
    # the first progress report comes at the play start, and tells where the start was
    assert progress and 0 <= progress[0][0] - progress[0][1].elapsed_ns - report.start_ns
    assert [p.sent for _, p in progress] == sorted(p.sent for _, p in progress)
    out = tmp_path / "out.blf"
    assert export(tmp_path / "r.mcap", out).channels == {"chassis": 1}
    back = read_source(out).events
    original = read_source(src).events
    assert [(e.id, e.flags, e.data) for e in back] == [(e.id, e.flags, e.data) for e in original]
    # relative timing: equal to the input up to the lateness the report measured (BLF keeps 10 µs)
    sent = np.array([e.t_ns for e in back]) - back[0].t_ns
    want = np.array([e.t_ns for e in original]) - original[0].t_ns
    slack = max(report.stat("max"), 0) + 20_000
    assert np.all(np.abs(sent - want) <= slack)
    assert report.frames_early == 0


def test_frames_a_fault_took_off_the_wire_do_not_shift_the_lateness_of_the_rest(buses, tmp_path):
    """20 of 60 frames dropped by a fault are never echoed; each later echo is still measured against
    its own planned time (it was measured against the frame 20 before it: 200 ms late)."""
    log = tmp_path / "d.log"
    log.write_text("".join(f"({i * 0.010:.6f}) can0 100#{i:02X} R\n" for i in range(60)))
    tl = build_timeline(Stimulus.model_validate({"sources": [{"file": str(log), "map": {"can0": "chassis"}}]}), RIG)
    faults = buses.faults("chassis")
    try:
        report = play(tl, buses, on_start=lambda start: faults.arm({"kind": "drop", "start": "195ms", "end": "395ms"},
                                                                   start))
    finally:
        faults.clear()
    counters = [data[0] for _, _, _, data in report.echoes["chassis"]]
    assert counters == [*range(20), *range(40, 60)]
    assert report.frames_echoed == 40 and report.frames_early == 0
    assert report.stat("p50") < 100 * MS


def test_the_collector_runs_its_full_pass_before_any_reader_waits_for_frames(buses, files, monkeypatch):
    """The full collection before the send loop holds the GIL for tens of ms on a large heap: run
    while a reader waited, it delivered that reader's frames that late (a chatty ECU's frames
    showed a delivery error of 50 ms and the bench an error on a quiet host)."""
    from hil.stimulus import injector, realtime

    readers_then: list[list[str]] = []
    freeze = realtime.freeze_gc
    monkeypatch.setattr(realtime, "freeze_gc", lambda: (
        readers_then.append([t.name for t in threading.enumerate() if "_read" in t.name]), freeze()))
    tl = build_timeline(Stimulus.model_validate(
        {"sources": [{"file": str(files["log"]), "map": {"can0": "chassis", "can1": "body"}}]}), RIG)
    report = injector._Replay(injector.make_plan(tl, buses), lambda message: None).run()
    assert report.frames_sent == report.frames_planned == 120
    assert readers_then == [[]]


def test_echoes_pair_by_content_and_order_so_a_lost_or_stray_echo_costs_only_itself():
    """On a real adapter an echo can be lost, and a frame that is none of ours can come back marked
    as our own (another program on the same interface): neither may shift the pairing of the rest,
    and the frames never seen are named."""
    from hil.stimulus.injector import _Bus, _Plan, _Replay

    replay = _Replay(_Plan([_Bus("chassis", "can", {"interface": "pcan"})], []), lambda _: None)
    replay.sent[0] = [(0x100, b"a"), (0x101, b"b"), (0x102, b"c"), (0x100, b"a")]
    assert replay._sent_index(0, 0x101, b"b") == 1  # the echo of 0x100 was lost
    assert replay._sent_index(0, 0x7FF, b"?") is None and replay.strays == 1
    assert replay._sent_index(0, 0x100, b"a") == 3  # order: not the first 0x100, which is behind
    assert replay._unseen() == {"chassis": {"count": 2, "ids": [0x100, 0x102]}}
    report = ReplayReport(frames_planned=4, frames_sent=4, frames_echoed=2, lateness_ns=[1, 2], span_planned_ns=9,
                          span_actual_ns=9, start_ns=0, unseen=replay._unseen())
    assert report.over_budget({}) == ["2 of 4 frame(s) sent were never seen on the bus (ids chassis: 0x100, 0x102)"]
