"""python-can's own tools work unchanged on simcan: can.player → bus → can.logger round-trips an ASC file."""

from __future__ import annotations

import subprocess
import sys

import can


def _asc_frames(path) -> list[tuple]:
    return [(m.arbitration_id, m.is_extended_id, m.is_fd, bytes(m.data)) for m in can.ASCReader(str(path))
            if not m.is_error_frame]


def test_player_and_logger_round_trip_an_asc_file(rig_buses, tmp_path):
    source = tmp_path / "in.asc"
    with can.ASCWriter(str(source)) as writer:
        for i in range(40):
            writer.on_message_received(can.Message(
                timestamp=i * 0.002, arbitration_id=(0x100 + i) if i % 2 else (0x1ABC000 + i),
                is_extended_id=not i % 2, data=bytes([i] * (i % 9)), channel=1))
    out = tmp_path / "out.asc"
    with rig_buses(chassis={}) as buses:
        channel = buses.can_config("chassis")["channel"]
        logger = subprocess.Popen([sys.executable, "-u", "-m", "can.logger", "-i", "simcan", "-c", channel,
                                   "-f", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert logger.stdout.readline().startswith("Connected to SimCanBus")
        watch = buses.open_can("chassis")
        player = subprocess.run([sys.executable, "-m", "can.player", "-i", "simcan", "-c", channel, str(source)],
                                capture_output=True, text=True, timeout=120)
        assert player.returncode == 0, player.stderr
        assert len([watch.recv(10) for _ in range(40)]) == 40
        watch.shutdown()
    # the broker went away: the logger reads what is still queued for it, then stops with an error
    _, err = logger.communicate(timeout=60)
    assert "CanOperationError" in err
    assert _asc_frames(out) == _asc_frames(source)


def test_viewer_shows_frames_from_simcan(rig_buses):
    """can.viewer is a curses program: run it on a pty, look for the frame on its screen, press q."""
    import os
    import select
    import time

    with rig_buses(chassis={}) as buses:
        channel = buses.can_config("chassis")["channel"]
        master, slave = os.openpty()
        viewer = subprocess.Popen([sys.executable, "-m", "can.viewer", "-i", "simcan", "-c", channel],
                                  stdin=slave, stdout=slave, stderr=slave, env={**os.environ, "TERM": "xterm",
                                                                               "LINES": "40", "COLUMNS": "120"})
        os.close(slave)
        tx = buses.open_can("chassis")
        screen = b""
        deadline = time.monotonic() + 60
        while not (b"7B3" in screen.upper() and b"CA FE" in screen.upper()) and time.monotonic() < deadline:
            tx.send(can.Message(arbitration_id=0x7B3, data=[0xCA, 0xFE], is_extended_id=False))
            if select.select([master], [], [], 0.5)[0]:
                screen += os.read(master, 65536)
        os.write(master, b"q")
        assert viewer.wait(30) == 0
        tx.shutdown()
        os.close(master)
    assert b"7B3" in screen.upper() and b"CA FE" in screen.upper()
