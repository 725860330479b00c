"""The recorder writes a lossless MCAP that standard readers decode, and that survives SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import jsonschema
import numpy as np
import pytest
from mcap.reader import make_reader

from hil.errors import RecordingError
from hil.recording import Recorder, load
from hil.canframe import FLAG_EXTENDED, FLAG_FD, FLAG_TX
from hil.values import ConsoleLine


def test_every_frame_console_line_and_event_comes_back(tmp_path):
    path = tmp_path / "run.mcap"
    frames = [(1_000 + i * 125_000, 0x100 + i % 7, FLAG_EXTENDED if i % 3 == 0 else 0, bytes([i % 256] * (i % 9)))
              for i in range(5_000)]
    with Recorder(path, metadata={"rig": "sim-one", "stack": {"hpc-app": "1.2.0"}}) as rec:
        for t, i, fl, d in frames:
            rec.frame("chassis", t, i, fl, d)
        rec.frame("body", 500, 0x7E0, FLAG_FD, bytes(range(64)))
        rec.console(ConsoleLine(2_000, "hpc", "ready", "stdout"))
        rec.console(ConsoleLine(1_500, "mcu", "warn: low voltage", "stderr"))
        rec.event("fault.armed", {"bus": "chassis", "kind": "drop"}, t_ns=3_000)
        rec.serial("mcu-console", 700, b"\x00\xffboot")
    loaded = load(path)
    assert loaded.complete and loaded.buses == ["body", "chassis"]
    f = loaded.frames("chassis")
    assert len(f) == len(frames)
    assert f.t_ns.tolist() == [t for t, *_ in frames]
    assert f.id.tolist() == [i for _, i, _, _ in frames]
    assert f.flags.tolist() == [fl for _, _, fl, _ in frames]
    assert [bytes(row[:n]) for row, n in zip(f.data, f.dlc)] == [d for *_, d in frames]
    body = loaded.frames("body")
    assert body.dlc.tolist() == [64] and bytes(body.data[0]) == bytes(range(64))
    assert [(c.t_ns, c.source, c.stream) for c in loaded.consoles] == [(1_500, "mcu", "stderr"), (2_000, "hpc", "stdout")]
    assert [(e.t_ns, e.kind, e.data["kind"]) for e in loaded.events] == [(3_000, "fault.armed", "drop")]
    assert loaded.serial == {"mcu-console": [(700, b"\x00\xffboot")]}
    assert loaded.metadata["rig"] == "sim-one" and json.loads(loaded.metadata["stack"]) == {"hpc-app": "1.2.0"}
    assert "CLOCK_MONOTONIC" in loaded.metadata["clock"] and loaded.metadata["host"]
    with pytest.raises(RecordingError, match="no CAN bus 'nope' in the recording; it has: body, chassis"):
        loaded.frames("nope")


def test_standard_mcap_reader_decodes_every_message_against_its_json_schema(tmp_path):
    path = tmp_path / "run.mcap"
    with Recorder(path) as rec:
        rec.frame("chassis", 10, 0x123, 0, b"\x01\x02")
        rec.console(ConsoleLine(20, "hpc", "hello"))
        rec.event("phase", {"name": "inject"}, t_ns=30)
        rec.serial("console", 40, b"abc")
    seen = set()
    with open(path, "rb") as fh:
        reader = make_reader(fh)
        assert reader.get_summary().statistics.message_count == 4
        for schema, channel, message in reader.iter_messages():
            assert schema.encoding == "jsonschema" and channel.message_encoding == "json"
            jsonschema.validate(json.loads(message.data), json.loads(schema.data))
            seen.add((channel.topic, schema.name))
    assert seen == {("/can/chassis", "hil.CanFrame"), ("/console", "foxglove.Log"),
                    ("/events", "hil.Event"), ("/serial/console", "hil.SerialChunk")}


def test_injected_echoes_mark_frames_tx(tmp_path):
    path = tmp_path / "run.mcap"
    with Recorder(path) as rec:
        for i in range(10):
            rec.frame("chassis", 1_000 * i, 0x100 + i % 2, 0, b"\x00")
        rec.injected("chassis", [(1_000 * i, 0x100 + i % 2, 0, b"\x00") for i in (2, 3, 8)])
        rec.injected("chassis", [(4_000, 0x555, 0, b"")])  # same time, other id: no mark
    f = load(path).frames("chassis")
    assert np.flatnonzero(f.flags & FLAG_TX).tolist() == [2, 3, 8]


WRITER = textwrap.dedent("""
    import sys, time
    from hil.recording import Recorder
    rec = Recorder(sys.argv[1], flush_interval=0.05)
    rec.start()
    i = 0
    while True:
        rec.frame("chassis", i, i & 0x7FF, 0, i.to_bytes(4, "little"))
        i += 1
        if i % 500 == 0:
            time.sleep(0.01)
        if i == 3000:
            print("flushed-soon", flush=True)
""")


def test_recording_is_readable_after_sigkill_up_to_the_last_flush(tmp_path):
    path = tmp_path / "killed.mcap"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "flushed-soon"
        while path.stat().st_size < 20_000:  # wait until a few chunks are on disk
            time.sleep(0.05)
        first = path.stat().st_size  # and one flush more: the chunk that size was part of is whole
        while path.stat().st_size == first:  # (a busy host may have seen it half written)
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    rec = load(path)
    assert not rec.complete
    f = rec.frames("chassis")
    assert len(f) >= 1_000
    assert f.t_ns.tolist() == list(range(len(f)))  # a gap-free prefix: nothing lost before the cut
    assert [int.from_bytes(bytes(r[:4]), "little") for r in f.data[-3:]] == f.t_ns[-3:].tolist()
    with pytest.raises(RecordingError, match="truncated"):
        load(path, strict=True)


def test_faults_injected_on_an_emulated_bus_are_recorded_as_events(tmp_path):
    import can

    from hil.buses import RigBuses
    from hil.spec.faults import DropFault
    from hil.spec.rig import Rig

    rig = Rig.model_validate({"name": "sim", "buses": {"chassis": {"kind": "can", "emulated": True}}})
    with RigBuses(rig, tmp_path / "run") as buses:
        with Recorder(tmp_path / "r.mcap", buses, ["chassis"]), buses.open_can("chassis") as node:
            buses.faults("chassis").arm(DropFault(kind="drop", ids=[0x123]))
            for i in range(3):
                node.send(can.Message(arbitration_id=0x123, data=[i], is_extended_id=False))
            node.send(can.Message(arbitration_id=0x7FF, data=[9], is_extended_id=False))
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and buses.stats("chassis").get("frames", 0) < 1:
                time.sleep(0.05)
            time.sleep(0.5)  # the recorder's reader passes the events on as it reads them
    rec = load(tmp_path / "r.mcap")
    faults = [e for e in rec.events if e.kind == "fault"]
    assert [(e.data["bus"], e.data["kind"], e.data["id"]) for e in faults if e.data["kind"] == "drop"] == [
        ("chassis", "drop", 0x123)] * 3
    assert any(e.data["kind"] == "armed" for e in faults)
    assert list(rec.frames("chassis").id) == [0x7FF]
