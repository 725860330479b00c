"""The emulated USB-CAN adapters, as a lab's software meets the real ones: the SLCAN device on its
pty spoken to byte by byte, python-can's own `slcan` and `socketcand` drivers, and `hil replay`
onto an adapter that gives no own echo."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import can
import pytest
import serial

from hil.buses import RigBuses
from hil.buses.adapters import Batches, Oscillator, Z1_PERIOD_MS
from hil.spec.rig import Rig

ROOT = Path(__file__).resolve().parents[2]


def rig(interface: str, channel: str | None = None, **adapter) -> Rig:
    channel = channel or ("ttyACM0" if interface == "slcan" else "can0")
    options = {"sleep_after_open": 0} if interface == "slcan" else {"host": "127.0.0.1"}
    return Rig.model_validate({"name": "sim", "buses": {"chassis": {
        "kind": "can", "emulated": True, "interface": interface, "channel": channel, "bitrate": 500000,
        "options": options, "adapter": {"batch": 0, **adapter}}}})


def ask(port: serial.Serial, command: bytes, want: int = 1) -> bytes:
    """Send one command, return what came back up to the ``want``-th CR or BEL (within 5 s)."""
    port.write(command + b"\r")
    got = b""
    end = time.monotonic() + 5
    while sum(got.count(c) for c in (b"\r", b"\a")) < want and time.monotonic() < end:
        got += port.read(1)
    return got


def test_the_slcan_device_answers_as_lawicel_firmware_does(tmp_path):
    with RigBuses(rig("slcan"), tmp_path) as buses:
        path = buses.can_config("chassis")["channel"]
        assert Path(path).is_symlink() and Path(path).resolve().as_posix().startswith("/dev/pts/")
        node = can.Bus(**buses.can_config("chassis", side="device"))
        with serial.Serial(path, 115200, timeout=0.05) as port:
            assert ask(port, b"V") == b"V1013\r" and ask(port, b"N") == b"NHIL0\r"
            assert ask(port, b"F") == b"\a"  # status needs an open channel
            assert ask(port, b"t1230") == b"\a"  # so does sending
            assert ask(port, b"S5") == b"\a"  # 250 kbit/s on a 500 kbit/s bus: only error frames would come
            assert ask(port, b"S9") == b"\a" and ask(port, b"Sx") == b"\a"
            assert ask(port, b"S6") == b"\r" and ask(port, b"Z1") == b"\r" and ask(port, b"O") == b"\r"
            assert ask(port, b"S6") == b"\a" and ask(port, b"Z0") == b"\a"  # not while open
            assert ask(port, b"F") == b"F00\r"
            assert ask(port, b"t12321") == b"\a" and ask(port, b"t8000") == b"\a"  # short data; id > 0x7FF
            assert ask(port, b"t1232AABB") == b"z\r" and ask(port, b"R123456784") == b"Z\r"
            sent = [node.recv(5), node.recv(5)]
            assert [(m.arbitration_id, bytes(m.data), m.is_remote_frame, m.dlc) for m in sent] == [
                (0x123, b"\xaa\xbb", False, 2), (0x12345678, b"", True, 4)]
            assert port.read(100) == b""  # no own echo, as the real device
            node.send(can.Message(arbitration_id=0x321, data=b"\x01\x02\x03", is_extended_id=False))
            time.sleep(0.05)
            node.send(can.Message(arbitration_id=0x321, data=b"\x01\x02\x03", is_extended_id=False))
            lines = [line for line in ask(port, b"", want=3).split(b"\r") if line]  # and the empty command's CR,
            assert [line[:10] for line in lines] == [b"t321301020"] * 2  # which a busy host may answer between
            stamps = [int(line[-4:], 16) for line in lines[:2]]
            assert all(0 <= s < Z1_PERIOD_MS for s in stamps)
            assert 40 <= (stamps[1] - stamps[0]) % Z1_PERIOD_MS <= 1000  # ms ticks of the adapter's own clock
            assert ask(port, b"C") == b"\r"
        node.shutdown()


@pytest.mark.parametrize("interface", ["slcan", "socketcand"])
def test_python_can_reaches_the_emulated_bus_through_the_adapter(tmp_path, interface):
    with RigBuses(rig(interface, drift_ppm=1000), tmp_path) as buses:
        host = buses.open_can("chassis", receive_own_messages=True)  # the device gives none all the same
        node = can.Bus(**buses.can_config("chassis", side="device"))
        try:
            # the host first: once its frame is on the bus the adapter has taken its open command, and
            # a frame on the bus before that is not the host's to see (a real adapter forwards none)
            host.send(can.Message(arbitration_id=0x1234567, data=b"\xaa" * 8))
            got = node.recv(5)
            assert (got.arbitration_id, bytes(got.data), got.is_extended_id) == (0x1234567, b"\xaa" * 8, True)
            node.send(can.Message(arbitration_id=0x1AB, data=b"\x11\x22", is_extended_id=False))
            got = host.recv(5)  # not the host's own frame: the device gives no echo
            assert (got.arbitration_id, bytes(got.data), got.is_extended_id) == (0x1AB, b"\x11\x22", False)
            if interface == "slcan":  # the device's Z1 counter: seconds wrapping at 60
                assert 0 <= got.timestamp < 60
            else:  # the server's wall clock
                assert abs(got.timestamp - time.time()) < 5
            assert host.recv(0.3) is None
        finally:
            host.shutdown()
            node.shutdown()


def test_an_adapter_that_dies_is_named_by_the_rig(tmp_path):
    with RigBuses(rig("socketcand"), tmp_path) as buses:
        buses.check_alive()
        os.kill(buses._adapters["chassis"].info["pid"], 9)
        buses._adapters["chassis"].proc.wait(10)
        with pytest.raises(Exception, match="emulated socketcand adapter of bus 'chassis' was killed by SIGKILL"):
            buses.check_alive()


def test_the_oscillator_drifts_and_batches_leave_at_usb_frame_boundaries():
    osc = Oscillator(100, epoch_ns=7)
    assert osc.ns(osc.origin + 1_000_000_000) == 7 + 1_000_100_000
    out = []
    batches = Batches(1_000_000, lambda data: out.append(data) or True)
    batches.add(b"a", 1_500_000)
    batches.add(b"b", 1_700_000)
    assert batches.timeout(1_600_000, 0.05) == pytest.approx(0.0004)
    batches.flush_due(1_999_999)
    assert out == []
    batches.flush_due(2_000_000)
    assert out == [b"ab"]
    full = Batches(0, lambda data: False)
    full.add(b"x", 5)
    full.flush_due(5)
    assert full.overruns == 1


def test_replay_onto_an_adapter_without_own_echo_is_measured_by_a_witness(tmp_path):
    (tmp_path / "rig.yaml").write_text(
        "name: sim-slcan\nbuses:\n  chassis: {kind: can, emulated: true, interface: socketcand, channel: can0,"
        " bitrate: 500000, options: {host: 127.0.0.1}}\n")
    (tmp_path / "drive.log").write_text("".join(f"({i / 200:.6f}) can0 {0x100 + i % 3:03X}#{i:02X}\n"
                                                for i in range(100)))
    env = {k: v for k, v in os.environ.items() if k not in ("HIL_RIG", "NO_COLOR")} | {"COLUMNS": "400"}

    def replay(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hil", "replay", "drive.log", "--rig", "rig.yaml", "--map",
                               "can0=chassis", *args], cwd=tmp_path, capture_output=True, text=True, env=env,
                              timeout=120)

    r = replay("--json")
    assert r.returncode in (0, 1), r.stderr
    report = json.loads(r.stdout)
    assert report["frames_sent"] == report["frames_echoed"] == 100, report
    assert report["frames_unmeasured"] == 0 and report["unseen"] == {}
    assert report["host"]["lateness"]["chassis"].startswith("simbus witness: socketcand gives no own echo")
    assert report["frames_early"] == 0
    assert re.search(r"lateness on chassis\s+│\s+simbus witness: socketcand gives no own echo", replay().stdout)


def test_the_adapter_clock_follows_an_emulated_socketcand_server_that_drifts(tmp_path):
    """The clock goal end to end, shorter: a server 1000 ppm fast, four seconds of frames through
    python-can's socketcand driver; the fit finds the drift and maps every frame after its send."""
    from hil.clock import AdapterClock

    with RigBuses(rig("socketcand", drift_ppm=1000, batch="1ms"), tmp_path) as buses:
        host = buses.open_can("chassis")
        node = can.Bus(**buses.can_config("chassis", side="device"))
        clock = AdapterClock()
        sent, mapped = [], []
        try:
            for i in range(400):
                sent.append(time.monotonic_ns())
                node.send(can.Message(arbitration_id=0x100, data=i.to_bytes(2, "big"), is_extended_id=False))
                got = host.recv(5)
                mapped.append(clock.to_run_clock(got.timestamp, time.monotonic_ns()))
                time.sleep(max(0.0, (sent[0] + (i + 1) * 10_000_000 - time.monotonic_ns()) / 1e9))
        finally:
            host.shutdown()
            node.shutdown()
    assert clock.summary()["fitted"] and -1500 < clock.drift_ppm < -500  # the run clock is slow against it
    late = sorted(m - s for m, s in zip(mapped, sent))
    assert late[0] > -clock.error_bound_ns() and late[len(late) // 2] < 5_000_000  # after the send, not long after


def test_the_socketcand_server_stamps_frames_at_their_end_not_when_it_woke(tmp_path):
    """A server's kernel stamps a frame from its CAN controller at its end: the emulated one stamps
    simcan's end of frame however late the host woke the server, and batches after the stamp.
    Against the end of frame a witness saw, the stamps differ by one constant (the server's epoch)
    to the µs; stamped on waking they scattered by the wake-ups, tens of µs and more."""
    from hil.clock import frame_ns

    for batch in ("0", "1ms"):
        with RigBuses(rig("socketcand", batch=batch), tmp_path / batch) as buses:
            host = buses.open_can("chassis")
            node = can.Bus(**buses.can_config("chassis", side="device"))
            witness = can.Bus(**buses.can_config("chassis", side="device"), hold=False)
            try:
                offsets = []
                for i in range(40):
                    node.send(can.Message(arbitration_id=0x100, data=[i], is_extended_id=False))
                    got, seen = host.recv(5), witness.recv(5)
                    offsets.append(round(got.timestamp * 1e6) - frame_ns(seen) // 1000)
                    time.sleep(0.003)
            finally:
                for bus in (host, node, witness):
                    bus.shutdown()
        assert max(offsets) - min(offsets) <= 2, (batch, offsets)


def test_the_echo_round_trip_of_a_socketcand_server_bounds_its_transport(tmp_path):
    from hil.buses.adapters import echo_round_trip_ns

    with RigBuses(rig("socketcand"), tmp_path) as buses:
        cfg = buses.can_config("chassis")
        assert 0 < echo_round_trip_ns(cfg["host"], cfg["port"], "can0", times=5) < 1_000_000_000
        with pytest.raises(OSError, match="refused to open can7"):
            echo_round_trip_ns(cfg["host"], cfg["port"], "can7")


def test_can_fd_frames_cross_the_slcan_adapter_both_ways(tmp_path):
    fd_rig = Rig.model_validate({"name": "sim", "buses": {"chassis": {
        "kind": "can", "emulated": True, "interface": "slcan", "channel": "ttyACM0", "bitrate": 500000, "fd": True,
        "data_bitrate": 2000000, "options": {"sleep_after_open": 0}}}})
    with RigBuses(fd_rig, tmp_path) as buses:
        host = buses.open_can("chassis")
        node = can.Bus(**buses.can_config("chassis", side="device"))
        try:
            host.send(can.Message(arbitration_id=0x123, data=bytes(range(12)), is_fd=True, is_extended_id=False))
            got = node.recv(5)
            assert (got.is_fd, got.bitrate_switch, bytes(got.data)) == (True, False, bytes(range(12)))
            node.send(can.Message(arbitration_id=0x1ABCDEF, data=bytes(64), is_fd=True, bitrate_switch=True))
            got = host.recv(5)
            assert (got.arbitration_id, got.is_extended_id, got.is_fd, got.bitrate_switch, len(got.data)) == (
                0x1ABCDEF, True, True, True, 64)
        finally:
            host.shutdown()
            node.shutdown()


def test_a_labs_absolute_device_path_is_linked_in_the_run_folder_and_touches_nothing_outside(tmp_path):
    """The lab rig, emulated unchanged, named /dev/ttyACM0 (here a file of the user's): the device
    is linked in the run folder under its last name, and the file at the rig's path is left alone
    (it was deleted and replaced by the link)."""
    theirs = tmp_path / "elsewhere" / "ttyACM0"
    theirs.parent.mkdir()
    theirs.write_text("not hil's")
    with RigBuses(rig("slcan", channel=str(theirs)), tmp_path / "run") as buses:
        path = Path(buses.can_config("chassis")["channel"])
        assert path == tmp_path / "run" / "simbus" / "ttyACM0" and path.is_symlink()
        with serial.Serial(str(path), 115200, timeout=0.05) as port:
            assert ask(port, b"V") == b"V1013\r"
    assert theirs.read_text() == "not hil's"
    assert not path.exists()  # the link goes with the rig


def test_every_frame_through_either_adapter_lies_within_the_bound_its_clock_reports(tmp_path):
    """The bound is true, frame by frame: five seconds of frames every 10 ms through each emulated
    adapter (1 ms batches) to python-can's driver and the recorder's AdapterClock, against the end
    of frame a simcan witness saw (the benchmark's clock part). SLCAN goes through the device's Z1
    stamps, so the host's wake-ups — this host is shared — are in no time. 1000 ppm drift sweeps
    the tick fraction through every window; at 100 ppm frames on the run clock's grid all share one
    fraction for seconds, and the fit can take the step where it wraps for drift (the benchmark
    shows it; docs/first-real-rig.md)."""
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "adapter_latency.py"), "--clock-only", "5",
                          "--drift-ppm", "1000"],
                         cwd=ROOT, env={**os.environ, "TMPDIR": str(tmp_path)}, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    clocks = json.loads(out.stdout)
    for name, clock in clocks.items():
        # every frame on a quiet host (the benchmark's figure); under CI's coverage and load a few
        # have fallen outside (stop 20's note, #14) — before Z1 stamps it was 153 of 800 within
        assert clock["frames"] >= 250 and clock["within"] >= 0.98 * clock["frames"], (name, clock)
    assert "the device's Z1 stamps" in clocks["slcan"]["method"] and "wraps every 60 s" in clocks["slcan"]["method"]
    assert clocks["slcan"]["error_bound_ns"] < 6_000_000  # half a tick, half a batch, the trip, scatter, drift


def test_hil_opens_slcan_with_the_devices_own_timestamps(tmp_path):
    """python-can's slcan driver stamps time.time() on parsing; hil's asks the device for Z1 while
    closed and gives each frame the device's millisecond counter (seconds, wrapping at 60)."""
    from hil.buses.slcan import TimestampedSlcan

    with RigBuses(rig("slcan", drift_ppm=0), tmp_path) as buses:
        host = buses.open_can("chassis")
        node = can.Bus(**buses.can_config("chassis", side="device"))
        try:
            assert isinstance(host, TimestampedSlcan) and host.timestamps
            assert 0 < host.round_trip_ns < 1_000_000_000
            host.send(can.Message(arbitration_id=0x7FF, is_extended_id=False))  # the device has taken O
            assert node.recv(5).arbitration_id == 0x7FF
            for data in ([1, 2], []):
                node.send(can.Message(arbitration_id=0x123, data=data, is_extended_id=False))
                got = host.recv(5)
                assert got.arbitration_id == 0x123 and bytes(got.data) == bytes(data)
                assert host.last_line.rstrip("\r")[-4:] == f"{round(got.timestamp * 1000):04X}"
                assert 0 <= got.timestamp < 60 and got.timestamp * 1000 == round(got.timestamp * 1000)
            node.send(can.Message(arbitration_id=0x1ABCDE, is_remote_frame=True, dlc=3))
            got = host.recv(5)
            assert got.is_remote_frame and got.dlc == 3 and 0 <= got.timestamp < 60
            # round trips go on beside the frames, under the load they meet: a V query every 0.25 s read
            end = time.monotonic() + 2.2
            while time.monotonic() < end:
                assert host.recv(0.05) is None  # the V answers are no frames
            assert len(host.trips) >= 2 and host.round_trip_ns > 0
        finally:
            host.shutdown()
            node.shutdown()
