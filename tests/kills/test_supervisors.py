"""The processes of a run killed from outside while the AEB bench injects — a component's leash,
the emulated MCU, its leash, the simbus broker, the injector: the bench ends ``error`` naming what
died and the phase it died in, nothing of the run is left, and hil exits 3 without a traceback.
(The planner itself killed is tests/e2e/test_aeb.py's.)"""

from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest

from .procs import Hil, side_by_side, survivors, wait_find

pytestmark = pytest.mark.timeout(900)

#: what is killed (how to find it among the run's processes) → (error kind, message pattern)
VICTIMS = {
    "planner-leash": (("planner.py",), True, "DeployError",
                      r"target 'hpc': component 'planner' lost its leash \(the supervising process was killed by "
                      r"SIGKILL\) and was stopped with it while running"),
    "mcu": (("-m hil.firmware",), False, "DeployError",
            r"target 'brake-mcu': component 'brake' was killed by SIGKILL while running"),
    "mcu-leash": (("-m hil.firmware",), True, "DeployError",
                  r"target 'brake-mcu': component 'brake' lost its leash \(the supervising process was killed by "
                  r"SIGKILL\) and was stopped with it while running"),
    "broker": (("-m hil.simbus.broker",), False, "BusError",
               r"the simbus broker was killed by SIGKILL; every emulated bus went down with it"),
    "injector": (("-m hil.stimulus.injector",), False, "StimulusError",
                 r"the injector process was killed by SIGKILL before the replay ended"),
}


def kill_one(tmp, victim: str):
    words, leash, _, _ = VICTIMS[victim]
    run = Hil(tmp, "-v", "run", "benches/aeb-smoke.yaml", "--rig", "rigs/sim-aeb.yaml", "--out", str(tmp / "run"))
    try:
        run.wait_for(lambda line: line == "approach: inject", "the injection")
        pid = wait_find(run.token, *words, leash=leash)
        time.sleep(1.0)  # into the replay
        os.kill(pid, signal.SIGKILL)
    finally:
        code, out, err = run.finish()
    return code, out, err, survivors(run.token), tmp / "run"


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    return side_by_side(list(VICTIMS), lambda victim: kill_one(tmp_path_factory.mktemp(victim), victim))


@pytest.mark.parametrize("victim", list(VICTIMS))
def test_a_killed_supervising_process_ends_the_bench_naming_it(killed, victim):
    code, out, err, left, run = killed[victim]
    _, _, kind, message = VICTIMS[victim]
    assert code == 3, out + err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    bench = json.loads((run / "results.json").read_text())["benches"][0]
    assert (bench["verdict"], bench["error_kind"], bench["phase"]) == ("error", kind, "inject"), bench
    assert re.match(message, bench["error"]), bench["error"]
    assert left == []
