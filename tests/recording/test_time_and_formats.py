"""Absolute time and what the formats hold: recordings carry the wall-clock anchor, exports write the
real start time, remote frames keep their DLC, printed channels are the written ones, and a format that
cannot hold every frame says which and how many (exit 2 unless --allow-loss)."""

from __future__ import annotations

import re
import time
from datetime import datetime
from functools import partial

import can
import pytest

from hil.clock import epoch_offset_ns, frame_ns, now_ns, run_ns, unix_seconds
from hil.recording import Recorder, load
from hil.recording.export import ExportLoss, export
from hil.canframe import FLAG_ERROR, FLAG_FD, FLAG_REMOTE
from tests.hilcli import hil as run_hil
from tests.simbus.conftest import make_rig

MS = 1_000_000


def test_run_ns_undoes_unix_seconds_within_a_float_step():
    t = now_ns()
    assert abs(run_ns(unix_seconds(t)) - t) <= 120  # 2^-22 s is the step of a float near 1.8e9 s
    assert abs(unix_seconds(t) - time.time()) < 1.0
    assert run_ns(unix_seconds(t), epoch_offset_ns() + 5) == run_ns(unix_seconds(t)) - 5


def test_simcan_frames_are_unix_time_and_recorded_on_the_run_clock_with_the_anchor(tmp_path):
    """A simcan frame's timestamp is Unix seconds (python-can's convention), its run_ns the exact run
    clock; the recorder stores the run clock and the anchor that links the two."""
    from hil.buses import RigBuses

    with RigBuses(make_rig(chassis={"bitrate": 500_000}), tmp_path / "run") as buses:
        with Recorder(tmp_path / "r.mcap", buses, ["chassis"], {"rig": "test"}):
            tx, rx = buses.open_can("chassis"), buses.open_can("chassis")
            time.sleep(0.2)  # the recorder's reader is on the bus
            tx.send(can.Message(arbitration_id=0x123, is_extended_id=False, is_remote_frame=True, dlc=2))
            tx.send(can.Message(arbitration_id=0x124, is_extended_id=False, data=b"\x01\x02"))
            got = [rx.recv(10), rx.recv(10)]
            time.sleep(0.3)
            tx.shutdown()
            rx.shutdown()
    assert all(abs(m.timestamp - time.time()) < 5 for m in got)
    assert [abs(run_ns(m.timestamp) - m.run_ns) <= 120 for m in got] == [True, True]
    assert got[0].is_remote_frame and got[0].dlc == 2
    loaded = load(tmp_path / "r.mcap")
    frames = loaded.frames("chassis")
    assert frames.t_ns.tolist() == [frame_ns(m) for m in got]
    assert loaded.epoch_offset_ns == epoch_offset_ns()
    assert int(loaded.metadata["started_unix_ns"]) == loaded.started_ns + loaded.epoch_offset_ns
    assert (frames.dlc.tolist(), bool(frames.flags[0] & FLAG_REMOTE)) == ([2, 2], True)


def _recording(path, buses=("body", "chassis"), extra=()):
    """Two buses' frames at 10 ms steps from now, a remote frame with DLC 2 among them; ``extra``
    (bus, flags, data) frames after them."""
    with Recorder(path, metadata={"rig": "bench-7"}) as rec:
        t0 = now_ns()
        for i, bus in enumerate(buses):
            rec.frame(bus, t0 + i * 10 * MS, 0x100 + i, 0, bytes([i, 1]))
        rec.frame(buses[-1], t0 + 50 * MS, 0x7AB, FLAG_REMOTE, b"", dlc=2)
        for k, (bus, flags, data) in enumerate(extra):
            rec.frame(bus, t0 + (60 + k) * MS, 0x200 + k, flags, data)
    return path, t0


def test_blf_has_the_real_start_the_remote_dlc_and_the_printed_channels(tmp_path):
    rec, t0 = _recording(tmp_path / "r.mcap")
    done = export(rec, tmp_path / "r.blf")
    assert done.channels == {"body": 1, "chassis": 2} and done.warnings == []
    reader = can.BLFReader(tmp_path / "r.blf")
    msgs = list(reader)
    assert abs(reader.start_timestamp - unix_seconds(t0)) < 0.002  # BLF keeps ms in its header
    assert abs(msgs[0].timestamp - unix_seconds(t0)) < 1e-6
    # python-can's reader numbers from 0 (it takes 1 from what the file holds): the file holds 1 and 2
    assert [(m.arbitration_id, m.channel + 1) for m in msgs] == [(0x100, 1), (0x101, 2), (0x7AB, 2)]
    assert (msgs[2].is_remote_frame, msgs[2].dlc) == (True, 2)


def test_asc_and_trc_headers_carry_todays_date_and_the_written_channels(tmp_path):
    rec, t0 = _recording(tmp_path / "r.mcap", buses=("chassis",))
    assert export(rec, tmp_path / "r.asc").channels == {"chassis": 1}
    text = (tmp_path / "r.asc").read_text()
    year = str(datetime.now().year)
    assert re.search(rf"^date .*{year}$", text, re.M) and re.search(rf"^Begin Triggerblock .*{year}$", text, re.M)
    assert re.search(r"^\s*[\d.]+ 1\s+100\s+Rx\s+d 2 00 01", text, re.M), text  # the printed channel: 1
    assert re.search(r"^\s*[\d.]+ 1\s+7AB\s+Rx\s+r 2", text, re.M), text  # a remote frame with DLC 2
    with pytest.raises(ExportLoss, match=r"1 remote frames left out"):
        export(rec, tmp_path / "r.trc")
    export(rec, tmp_path / "r.trc", allow_loss=True)
    start = re.search(r"Start time: (\S+ \S+)", (tmp_path / "r.trc").read_text())[1]
    assert abs(datetime.fromisoformat(start).timestamp() - unix_seconds(t0)) < 0.002


def test_mf4_starts_when_the_recording_did(tmp_path):
    pytest.importorskip("asammdf")
    from asammdf import MDF

    rec, t0 = _recording(tmp_path / "r.mcap", buses=("chassis",))
    export(rec, tmp_path / "r.mf4")
    started = load(rec)
    start_s = (started.started_ns + started.epoch_offset_ns) / 1e9
    mdf = MDF(tmp_path / "r.mf4")
    assert abs(mdf.header.start_time.timestamp() - start_s) < 1e-3
    offsets = mdf.get("CAN_DataFrame.ID").timestamps  # seconds after the measurement's start
    assert abs(start_s + offsets[0] - unix_seconds(t0)) < 1e-5
    mdf.close()
    back = list(can.MF4Reader(tmp_path / "r.mf4"))
    assert [(m.arbitration_id, m.channel, m.is_remote_frame, m.dlc) for m in back][-1] == (0x7AB, 1, True, 2)


def test_lossy_exports_are_refused_with_counts_or_written_with_warnings(tmp_path):
    rec, _ = _recording(tmp_path / "r.mcap", extra=[("chassis", FLAG_ERROR, b""), ("chassis", FLAG_FD, bytes(12)),
                                                   ("body", FLAG_FD, bytes(16))])
    with pytest.raises(ExportLoss) as refused:
        export(rec, tmp_path / "r.trc")
    assert str(refused.value).endswith(
        "to TRC without loss: 1 remote frames left out (python-can's TRC writer cannot write them); 1 error frames "
        "left out (python-can's TRC writer cannot write them); 2 CAN FD frames left out (python-can's TRC writer "
        "cannot write them); pass --allow-loss to write the rest")
    assert not (tmp_path / "r.trc").exists()
    with pytest.raises(ExportLoss, match=r"6 frames of 2 buses merged into one \(CSV has no channel column\); "
                                         r"2 CAN FD frames lose their FD and BRS flags"):
        export(rec, tmp_path / "r.csv")
    assert export(rec, tmp_path / "r.csv", buses=["body"], allow_loss=True).warnings == [
        "CSV export: 1 CAN FD frames lose their FD and BRS flags (CSV has no column for them)"]
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 1 + 2
    with pytest.raises(ExportLoss, match=r"to LOG without loss: 1 remote frames lose their DLC"):
        export(rec, tmp_path / "r.log")


hil = partial(run_hil, env={"NO_COLOR": "1", "COLUMNS": "300"})


def test_hil_export_exit_2_on_loss_and_prints_the_written_channels(tmp_path):
    _recording(tmp_path / "r.mcap")
    r = hil("export", "r.mcap", "--to", "trc", cwd=tmp_path)
    assert r.returncode == 2 and "1 remote frames left out" in r.stderr and "--allow-loss" in r.stderr, r.stderr
    r = hil("export", "r.mcap", "--to", "trc", "--allow-loss", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout == "wrote r.trc (body → channel 1, chassis → channel 2)\n", r.stderr
    assert "warning: TRC export: 1 remote frames left out" in r.stderr
    rows = [line.split() for line in (tmp_path / "r.trc").read_text().splitlines() if not line.startswith(";")]
    assert [(row[3], row[4]) for row in rows] == [("1", "0100"), ("2", "0101")]  # bus column, id
