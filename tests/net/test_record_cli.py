"""`hil record` on a rig with a network: what is sent to hil's declared port is recorded, and the
HIL_BUSES line it prints for programs that join names only the buses (networks are addresses)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

from hil.recording import load
from tests.hilcli import PLAIN, ROOT, hil_env


def test_hil_record_records_datagrams_sent_to_hils_port(tmp_path, rig_text):
    (tmp_path / "rig.yaml").write_text(rig_text)
    brake = int(rig_text.split("brake: ")[1].split("}")[0])
    proc = subprocess.Popen([sys.executable, "-m", "hil", "-v", "record", "--rig", str(tmp_path / "rig.yaml"),
                             "--duration", "4s", "-o", str(tmp_path / "r.mcap")], cwd=ROOT, env=hil_env(PLAIN),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # printed once recording runs
        assert line.startswith("HIL_BUSES=") and "chassis" in line and "lan" not in line, line
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.1.2", 0))
            for k in range(5):
                s.sendto(bytes([k]) * 10, ("127.0.1.1", brake))
                time.sleep(0.01)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    grams = load(tmp_path / "r.mcap", strict=True).datagrams["lan"]
    assert [(g.data, g.dst, g.injected) for g in grams] == [(bytes([k]) * 10, f"127.0.1.1:{brake}", False)
                                                            for k in range(5)]
