"""End to end through emulated USB-CAN adapters: the AEB smoke suite with its chassis bus reached
through the emulated SLCAN device, and again through socketcand — python-can's own drivers, the
AdapterClock and the harness accounting of the lab path, run in CI. A pass, or an `error` naming
the harness on a busy host; never a `fail`. (How close the latencies come to the all-simcan run
is host-load sensitive: benchmarks/adapter_latency.py measures it.)"""

from __future__ import annotations

import json

import pytest

from hil.recording import load
from tests.e2e.test_aeb import hil
from tests.outcomes import explain, pass_or_harness_error


@pytest.mark.parametrize("interface", ["slcan", "socketcand"])
def test_the_smoke_suite_runs_with_its_chassis_bus_behind_an_emulated_adapter(tmp_path, interface):
    r = hil("run", "benches/aeb-smoke.yaml", "--rig", f"rigs/sim-aeb-{interface}.yaml", "--out",
            str(tmp_path / "run"), "--history", str(tmp_path / "history.sqlite"), timeout=400)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    bench = results["benches"][0]
    assert pass_or_harness_error(bench), explain(bench) + r.stderr[-2000:]
    assert r.returncode == (0 if bench["verdict"] == "pass" else 3)
    clock = bench["harness"]["clocks"]["chassis"]  # the adapter's clock is part of the harness
    assert "lower-envelope fit" in clock["method"] and clock["frames"] > 100
    assert 0 < clock["error_bound_ns"] < 5_000_000
    # the USB batch (1 ms) between stamp and host: mapped to its middle, the other half in the bound
    assert clock["error_bound_ns"] >= 500_000
    if interface == "slcan":  # the device's own stamps (not python-can's on arrival), 1 ms ticks, and the
        # trip after the batch bounded by the least V round trip
        assert "the device's Z1 stamps" in clock["method"] and "V round trip" in clock["method"]
        assert clock["resolution_ns"] == 1_000_000 and clock["error_bound_ns"] >= 1_000_000
    else:  # the TCP trip after the server's stamp, bounded by the echo round trip
        assert "echo round trip" in clock["method"]
    # every latency that touches chassis carries the adapter clock's bound
    assert "adapter clock of chassis" in bench["probes"]["radar-to-request"]["harness"]["parts"]
    assert "chassis (adapter clock)" in r.stdout
    rec = load(tmp_path / "run" / bench["files"]["recording"], strict=True)
    assert interface in json.loads(rec.metadata["bus_clocks"])["chassis"]
    assert bench["probes"]["radar-to-request"]["stats"]["count"] > 100
