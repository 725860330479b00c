"""The timeline: merge, maps, filters, windows, rate, loop, start modes, gap skipping, waits, and
DBC overrides (checked by decoding the frames that come out)."""

from __future__ import annotations

import re
import tracemalloc
from pathlib import Path

import cantools
import pytest

from hil.errors import StimulusError
from hil.spec.rig import Rig
from hil.spec.suite import Stimulus
from hil.stimulus import serialcap
from hil.stimulus.events import SerialEvent
from hil.stimulus.timeline import build_timeline

MS = 1_000_000
DBC = """VERSION ""
BU_: SENSOR
BO_ 256 Speed: 8 SENSOR
 SG_ VehicleSpeed : 0|16@1+ (0.01,0) [0|655.35] "km/h" SENSOR
 SG_ Counter : 16|4@1+ (1,0) [0|15] "" SENSOR
BO_ 512 Yaw: 2 SENSOR
 SG_ YawRate : 0|16@1- (0.01,0) [-327.68|327.67] "deg/s" SENSOR
"""


def rig(**extra_buses) -> Rig:
    buses = {"chassis": {"kind": "can", "emulated": True}, "body": {"kind": "can", "emulated": True},
             "console": {"kind": "serial", "emulated": True}} | extra_buses
    return Rig.model_validate({"name": "sim", "buses": buses})


def candump(path: Path, lines: list[tuple[float, str, int, str]]) -> Path:
    path.write_text("".join(f"({t:.6f}) {ch} {i:03X}#{d}\n" for t, ch, i, d in lines))
    return path


def stim(**kw) -> Stimulus:
    return Stimulus.model_validate(kw)


@pytest.fixture
def log(tmp_path) -> Path:
    # 10 frames every 10 ms on can0 (ids 0x100 / 0x200 alternating) and 2 on can1
    lines = [(100 + i * 0.01, "can0", 0x100 if i % 2 == 0 else 0x200, f"{i:02X}") for i in range(10)]
    lines += [(100.015, "can1", 0x300, "AA"), (100.055, "can1", 0x300, "BB")]
    return candump(tmp_path / "drive.log", sorted(lines))


def times(tl) -> list[int]:
    return [s.t_ns for s in tl.steps]


def test_maps_route_channels_and_unmapped_channels_are_counted(log):
    tl = build_timeline(stim(sources=[{"file": str(log), "map": {"can0": "chassis"}}]), rig())
    assert {s.bus for s in tl.steps} == {"chassis"} and len(tl.steps) == 10
    assert tl.dropped == {"on unmapped channel 'can1'": 2}
    assert times(tl) == [i * 10 * MS for i in range(10)]
    tl = build_timeline(stim(sources=[{"file": str(log), "map": {"can0": "chassis", "can1": "body"}}]), rig())
    assert [(s.t_ns, s.bus, s.event.data) for s in tl.steps if s.bus == "body"] == [(15 * MS, "body", b"\xaa"),
                                                                                      (55 * MS, "body", b"\xbb")]
    assert times(tl) == sorted(times(tl))


def test_map_errors_name_the_channel_and_what_exists(log):
    with pytest.raises(StimulusError, match=r"map names log channel\(s\) 'can7', but the file has: 'can0', 'can1'"):
        build_timeline(stim(sources=[{"file": str(log), "map": {"can7": "chassis"}}]), rig())
    with pytest.raises(StimulusError, match="maps to unknown bus 'powertrain'; the rig has: body, chassis, console"):
        build_timeline(stim(sources=[{"file": str(log), "map": {"can0": "powertrain"}}]), rig())
    with pytest.raises(StimulusError, match="holds can data but maps to serial bus 'console'"):
        build_timeline(stim(sources=[{"file": str(log), "map": {"can0": "console"}}]), rig())
    with pytest.raises(StimulusError, match="log channel 'can0' needs a 'map' entry .* 2 can buses: chassis, body"):
        build_timeline(stim(sources=[{"file": str(log)}]), rig())


def test_without_a_map_a_single_bus_rig_takes_every_channel(log):
    one = Rig.model_validate({"name": "one", "buses": {"chassis": {"kind": "can", "emulated": True}}})
    tl = build_timeline(stim(sources=[{"file": str(log)}]), one)
    assert len(tl.steps) == 12 and {s.bus for s in tl.steps} == {"chassis"}


def test_id_filters_and_window(log):
    src = {"file": str(log), "map": {"can0": "chassis", "can1": "body"}}
    tl = build_timeline(stim(sources=[src | {"include_ids": ["0x100", "0x300"], "exclude_ids": [0x300]}]), rig())
    assert {s.event.id for s in tl.steps} == {0x100} and tl.dropped["filtered by id"] == 7
    tl = build_timeline(stim(sources=[src | {"start": "20ms", "end": "50ms"}]), rig())
    assert [(s.t_ns, s.event.id) for s in tl.steps] == [(0, 0x100), (10 * MS, 0x200), (20 * MS, 0x100)]
    assert tl.dropped["outside the window"] == 9


def test_rate_loop_delay_and_start_modes(log):
    src = {"file": str(log), "map": {"can0": "chassis"}}
    assert times(build_timeline(stim(sources=[src], rate=2.0), rig())) == [i * 5 * MS for i in range(10)]
    looped = times(build_timeline(stim(sources=[src], loop=3), rig()))
    assert looped == [n * 100 * MS + i * 10 * MS for n in range(3) for i in range(10)]  # period = span + gap
    delayed = build_timeline(stim(sources=[src | {"start": "25ms"}], delay="1s", start="immediately"), rig())
    assert times(delayed)[:2] == [1_000 * MS + 5 * MS, 1_000 * MS + 15 * MS]
    first = build_timeline(stim(sources=[src | {"start": "25ms"}], start="first-event"), rig())
    assert times(first)[:2] == [0, 10 * MS]


def test_sources_merge_on_one_timeline_with_offsets(tmp_path, log):
    other = candump(tmp_path / "other.log", [(5.0, "can0", 0x7FF, "01"), (5.012, "can0", 0x7FF, "02")])
    tl = build_timeline(stim(sources=[{"file": str(log), "map": {"can0": "chassis"}},
                                      {"file": str(other), "map": {"can0": "body"}, "offset": "25ms"}]), rig())
    assert [(s.t_ns // MS, s.bus) for s in tl.steps][2:6] == [(20, "chassis"), (25, "body"), (30, "chassis"),
                                                               (37, "body")]


def test_long_gaps_are_shortened(tmp_path):
    path = candump(tmp_path / "gap.log", [(1.0, "can0", 1, "01"), (1.01, "can0", 1, "02"), (61.0, "can0", 1, "03"),
                                         (61.02, "can0", 1, "04")])
    tl = build_timeline(stim(sources=[{"file": str(path), "map": {"can0": "chassis"}}], skip_gaps_over="100ms"), rig())
    assert times(tl) == [0, 10 * MS, 110 * MS, 130 * MS]


def test_serial_capture_goes_to_its_serial_bus(tmp_path):
    path = tmp_path / "c.serial"
    serialcap.write(path, [SerialEvent(0, "uart0", b"AT\r"), SerialEvent(2 * MS, "uart0", b"OK\r")])
    tl = build_timeline(stim(sources=[{"file": str(path)}]), rig())
    assert [(s.t_ns, s.bus, s.event.data) for s in tl.steps] == [(0, "console", b"AT\r"), (2 * MS, "console", b"OK\r")]


@pytest.fixture
def speed_log(tmp_path) -> tuple[Path, Path]:
    db = cantools.database.load_string(DBC, "dbc")
    speed = db.get_message_by_name("Speed")
    lines = [(i * 0.01, "can0", 0x100, speed.encode({"VehicleSpeed": 10.0 + i, "Counter": i % 16}).hex())
             for i in range(20)]
    lines += [(0.005, "can0", 0x200, "0100")]
    dbc = tmp_path / "sensors.dbc"
    dbc.write_text(DBC)
    return candump(tmp_path / "speed.log", sorted(lines)), dbc


def decoded(tl, name="Speed"):
    db = cantools.database.load_string(DBC, "dbc")
    msg = db.get_message_by_name(name)
    return [(s.t_ns // MS, msg.decode(s.event.data)) for s in tl.steps if s.event.id == msg.frame_id]


@pytest.mark.parametrize("action, value, expect", [
    ("set", 99.5, lambda i, v: 99.5),
    ("scale", 2.0, lambda i, v: v * 2),
    ("offset", -5.0, lambda i, v: v - 5),
    ("freeze", None, lambda i, v: 14.0),  # the value just before the window (frame 4)
])
def test_signal_overrides_change_only_frames_in_their_window(speed_log, action, value, expect):
    path, dbc = speed_log
    ov = {"message": "Speed", "signal": "VehicleSpeed", "action": action, "start": "50ms", "end": "100ms"}
    if value is not None:
        ov["value"] = value
    tl = build_timeline(stim(sources=[{"file": str(path), "map": {"can0": "chassis"}}], dbc=[str(dbc)],
                             overrides=[ov]), rig())
    for t_ms, sig in decoded(tl):
        i = t_ms // 10
        want = expect(i, 10.0 + i) if 50 <= t_ms < 100 else 10.0 + i
        assert sig["VehicleSpeed"] == pytest.approx(want), (t_ms, sig)
        assert sig["Counter"] == i % 16  # other signals untouched


def test_dropout_removes_the_message_for_the_window(speed_log):
    path, dbc = speed_log
    tl = build_timeline(stim(sources=[{"file": str(path), "map": {"can0": "chassis"}}], dbc=[str(dbc)],
                             overrides=[{"message": "Speed", "action": "drop", "start": "30ms", "end": "80ms"}]), rig())
    assert [t for t, _ in decoded(tl)] == [0, 10, 20, 80, 90, 100, 110, 120, 130, 140, 150, 160, 170, 180, 190]
    assert [s.event.id for s in tl.steps].count(0x200) == 1 and tl.dropped["dropout override"] == 5


def test_override_errors_are_precise(speed_log):
    path, dbc = speed_log
    src = [{"file": str(path), "map": {"can0": "chassis"}}]
    with pytest.raises(StimulusError, match="names message 'Brake', which is not in the DBC; it has: Speed, Yaw"):
        build_timeline(stim(sources=src, dbc=[str(dbc)], overrides=[{"message": "Brake", "action": "drop"}]), rig())
    with pytest.raises(StimulusError, match="has no signal 'Speed'; it has: VehicleSpeed, Counter"):
        build_timeline(stim(sources=src, dbc=[str(dbc)],
                            overrides=[{"message": "Speed", "signal": "Speed", "action": "set", "value": 1}]), rig())
    with pytest.raises(StimulusError, match=r"cannot encode VehicleSpeed=1000"):
        build_timeline(stim(sources=src, dbc=[str(dbc)],
                            overrides=[{"message": "Speed", "signal": "VehicleSpeed", "action": "set", "value": 1000}]),
                       rig())
    with pytest.raises(StimulusError, match="the stimulus has no 'dbc' files"):
        build_timeline(stim(sources=src, overrides=[{"message": "Speed", "action": "drop"}]), rig())


def test_waits_sit_before_the_first_step_at_or_after_their_time(speed_log):
    path, dbc = speed_log
    tl = build_timeline(stim(sources=[{"file": str(path), "map": {"can0": "chassis"}}], dbc=[str(dbc)], loop=2,
                             waits=[{"at": "42ms", "until": {"bus": "body", "message": "Yaw", "signal": "YawRate",
                                                             "op": ">", "value": 1.0}, "timeout": "2s"}]), rig())
    assert [(w.index, w.id, w.timeout_ns) for w in tl.waits] == [(6, 0x200, 2_000_000_000), (27, 0x200, 2_000_000_000)]
    assert tl.steps[6].t_ns == 50 * MS and tl.steps[5].t_ns == 40 * MS
    assert tl.buses() == ["body", "chassis"]


def test_a_wait_must_watch_a_can_bus_of_the_rig(speed_log):
    path, dbc = speed_log
    for bus in ("console", "powertrain"):
        with pytest.raises(StimulusError, match=rf"wait on bus '{bus}': expected a CAN bus of rig 'sim' \(chassis, body\)"):
            build_timeline(stim(sources=[{"file": str(path), "map": {"can0": "chassis"}}],
                                waits=[{"at": "10ms", "until": {"bus": bus, "id": 0x200}}]), rig())


# ---- bounds (issue #12): silence, loops and rates are refused before anything is expanded ---------

ONE_BUS = Rig.model_validate({"name": "r", "buses": {"chassis": {"kind": "can", "emulated": True}}})


@pytest.fixture
def gap_log(tmp_path) -> Path:
    path = tmp_path / "gap.log"
    lines = [f"({1000 + i * 0.01:.6f}) can0 123#{i:02X}" for i in range(175)]
    lines.insert(100, f"({1000 + 36000:.6f}) can0 124#00")  # 10 hours later
    lines[101:] = [f"({1000 + 36000 + i * 0.01:.6f}) can0 123#{i:02X}" for i in range(1, 76)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_ten_hour_gap_is_refused_naming_file_and_line(gap_log):
    with pytest.raises(StimulusError) as err:
        build_timeline(Stimulus.model_validate({"sources": [{"file": str(gap_log)}]}), ONE_BUS)
    assert str(err.value) == ("stimulus source 1 (gap.log line 101): 35999 s of silence before this frame (35999 s in the "
                              "log, at rate 1); the longest silence allowed is max_gap (60 s): shorten gaps with "
                              "skip_gaps_over, or raise max_gap if the silence is meant")


def test_a_long_gap_plays_when_it_is_asked_for(gap_log):
    timeline = build_timeline(Stimulus.model_validate({"sources": [{"file": str(gap_log)}], "max_gap": "11h"}),
                              ONE_BUS)
    assert len(timeline.steps) == 176
    timeline = build_timeline(Stimulus.model_validate({"sources": [{"file": str(gap_log)}], "skip_gaps_over": "1s"}),
                              ONE_BUS)
    assert timeline.span_ns < 3_000_000_000


@pytest.mark.parametrize("extra, expected", [
    ({"rate": 1e-12}, r"stimulus source 1 \(s\.log line 2\): 1e\+10 s of silence before this frame \(0\.01 s in the log, "
                      r"at rate 1e-12\); .*"),
    ({"delay": "2h"}, r"stimulus source 1 \(s\.log line 1\): the first frame would be sent 7200 s after the replay starts "
                      r"\(delay, offset and rate 1\); .*"),
    ({"start": "immediately", "sources": [{"offset": "3h"}]}, r"stimulus source 1 \(s\.log line 1\): the first frame "
                                                               r"would be sent 10800 s after .*"),
    ({"waits": [{"at": "2h", "until": {"bus": "chassis", "id": 0x10}}]}, r"wait at 7200 s: 7199\.91 s of silence "
                                                                         r"before it; .*"),
], ids=["rate 1e-12", "delay 2h", "offset 3h", "wait at 2h"])
def test_absurd_silence_from_the_spec_is_refused(tmp_path, extra, expected):
    path = tmp_path / "s.log"
    path.write_text("".join(f"({1 + i / 100:.6f}) can0 123#11\n" for i in range(10)))
    source = {"file": str(path), **(extra.pop("sources", [{}])[0])}
    with pytest.raises(StimulusError) as err:
        build_timeline(Stimulus.model_validate({"sources": [source], **extra}), ONE_BUS)
    assert re.fullmatch(expected, str(err.value)), str(err.value)


def test_a_huge_loop_is_refused_before_anything_is_expanded(tmp_path):
    path = tmp_path / "s.log"
    path.write_text("".join(f"({1 + i / 100:.6f}) can0 123#11\n" for i in range(350)))
    tracemalloc.start()
    try:
        with pytest.raises(StimulusError) as err:
            build_timeline(Stimulus.model_validate({"sources": [{"file": str(path)}], "loop": 100_000_000}), ONE_BUS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(err.value) == ("the stimulus plans 350 frames and 0 waits × loop 100,000,000 = 35,000,000,000 steps; at most "
                              "2,000,000 are played (loop fewer times, or play a shorter window)")
    assert peak < 20 << 20  # the 20 GB of the campaign: nothing was expanded


def test_an_empty_source_among_others_is_named(tmp_path):
    good = tmp_path / "good.log"
    good.write_text("(1.000000) can0 123#11\n")
    empty = tmp_path / "empty.log"
    empty.write_text("")
    with pytest.raises(StimulusError, match=rf"^{re.escape(str(empty))}: no frames in the file$"):
        build_timeline(Stimulus.model_validate({"sources": [{"file": str(good)}, {"file": str(empty)}]}), ONE_BUS)


def test_what_a_lenient_source_skipped_is_reported_as_left_out(tmp_path):
    path = tmp_path / "drive.log"
    path.write_text("(1.000000) can0 123#11\ngarbage\n(1.000100) can0 123#12\n")
    with pytest.raises(StimulusError, match=r"drive\.log: line 2: expected a candump frame"):
        build_timeline(Stimulus.model_validate({"sources": [{"file": str(path)}]}), ONE_BUS)
    timeline = build_timeline(Stimulus.model_validate({"sources": [{"file": str(path), "lenient": True}]}), ONE_BUS)
    assert len(timeline.steps) == 2 and timeline.dropped == {"lines not understood (lenient) in drive.log": 1}
