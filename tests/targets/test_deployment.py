"""The Deployment engine: events in order, power cycle before deploy, teardown on errors."""

from __future__ import annotations

import sys
import time

import pytest

from hil.buses import RigBuses
from hil.errors import DeployError
from hil.targets import bundle
from hil.targets.deployment import Deployment

from .conftest import wait_groups_gone

LOG = "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')"


def test_power_cycle_happens_before_deploy_and_teardown_follows(sf, tmp_path):
    log = str(tmp_path / "power.log")
    sf.rig_doc["power"] = {"pdu": {"kind": "command", "on": [sys.executable, "-c", LOG, log, "on"],
                                   "off": [sys.executable, "-c", LOG, log, "off"], "off_time": "0s"}}
    sf.rig_doc["targets"]["hpc"]["power"] = "pdu"
    rig = sf.rig()
    stack = sf.stack({"svc": {"argv": ["sh", "-c", "echo up; exec sleep 600"], "ready": {"console": "^up$"}}})
    events = []
    with RigBuses(rig, tmp_path / "run") as buses:
        with Deployment(rig, stack, buses, tmp_path / "run", on_event=events.append) as dep:
            assert dep.drivers() == {"hpc": "hpc-local"}
            dep.up(power_cycle=True)
            dep.check_alive()
    assert (tmp_path / "power.log").read_text() == "off\non\n"
    assert dep.power_cycled == ["hpc"]
    assert [e.phase for e in events] == ["power-cycle", "deploying", "deployed", "starting", "started",
                                         "waiting", "ready", "stopping", "stopped"]
    assert events[0].detail == "switch pdu"
    assert events[5].detail == "svc: console line matching '^up$'"


def test_a_prebuilt_bundle_is_used_and_a_death_is_reported(sf, tmp_path):
    sf.file("run.sh", "echo up\nsleep 0.2\nexit 5\n")
    rig = sf.rig()
    stack = sf.stack({"svc": {"files": ["run.sh"], "argv": ["sh", "run.sh"], "ready": {"console": "^up$"}}})
    prebuilt = tmp_path / "b.tar.gz"
    bundle.build_stack(stack, prebuilt)
    events = []
    with RigBuses(rig, tmp_path / "run") as buses:
        with Deployment(rig, stack, buses, tmp_path / "run", bundle=prebuilt, on_event=events.append) as dep:
            dep.up()
            assert not (tmp_path / "run" / "demo-1.0.tar.gz").exists()
            with pytest.raises(DeployError, match="component 'svc' exited with code 5 while running"):
                for _ in range(600):  # bounded: the component exits on its own
                    dep.check_alive()
                    time.sleep(0.1)
    assert events[-1].phase == "stopped"


def test_a_target_failing_to_stop_does_not_keep_the_others_running(sf, tmp_path):
    sf.rig_doc["targets"]["hpc2"] = {"kind": "hpc", "reach": {"via": "emulated"}}
    rig = sf.rig()
    stack = sf.stack({"a": {"argv": ["sh", "-c", "echo up; exec sleep 600"], "ready": {"console": "^up$"}},
                      "b": {"argv": ["sh", "-c", "echo up; exec sleep 600"], "ready": {"console": "^up$"},
                            "target": "hpc2"}})
    events = []
    with RigBuses(rig, tmp_path / "run") as buses:
        with pytest.raises(OSError, match="stop failed on purpose"):
            with Deployment(rig, stack, buses, tmp_path / "run", on_event=events.append) as dep:
                dep.up()
                groups = {**dep.targets["hpc"].pgids(), **dep.targets["hpc2"].pgids()}
                broken = dep.targets["hpc2"]
                real_stop = broken._stop

                def stop_then_fail():
                    real_stop()
                    raise OSError("stop failed on purpose")

                broken._stop = stop_then_fail
    assert [(e.target, e.phase) for e in events[-4:]] == [("hpc2", "stopping"), ("hpc2", "failed"),
                                                         ("hpc", "stopping"), ("hpc", "stopped")]
    assert wait_groups_gone(groups.values()) == {}
