"""A component's daemon that left with ``setsid`` and a double fork — a session and process group of
its own, reparented away from the component — survives neither the teardown, nor a killed
controller, nor a killed leash, with cgroups (where this host lets hil make them) and without;
when the controller and the leash are killed at once, the next hil that starts a child ends it
(its controller is gone); and in a cgroup not even a daemon that scrubbed its environment escapes."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from hil.lifecycle import cgroup, procfs

from .procs import PATIENCE_S, ROOT, Hil, marked, survivors, wait_find

pytestmark = pytest.mark.timeout(600)

SUITE = Path(__file__).with_name("escape") / "suite.yaml"
RIG = ROOT / "tests" / "lab" / "rigs" / "sim-lab-a.yaml"


NO_CGROUPS = pytest.mark.skipif(not cgroup.available(), reason="no cgroup v2 hil may use here")
CGROUPS = [pytest.param({}, id="cgroup", marks=NO_CGROUPS), pytest.param({"HIL_CGROUP": "0"}, id="no-cgroup")]


def run(tmp: Path, bench: str, out: str = "run", env: dict[str, str] | None = None) -> Hil:
    return Hil(tmp, "-v", "run", str(SUITE), "--rig", str(RIG), "--bench", bench, "--out", str(tmp / out),
               "--no-history", env=env)


def daemon(token: str) -> int:
    """The escaped daemon: an escaper.py process in a session other than its parent's."""
    end = time.monotonic() + PATIENCE_S
    while time.monotonic() < end:
        for pid in marked(token):
            s = procfs.stat(pid)
            parent = procfs.stat(s.ppid) if s else None
            if s and parent and "escaper.py" in procfs.cmdline(pid) and s.sid != parent.sid and s.sid != pid:
                return pid
        time.sleep(0.05)
    raise AssertionError("the escaper's daemon never showed up")


@pytest.mark.parametrize("env", CGROUPS)
def test_teardown_ends_the_daemon(tmp_path, env):
    hil = run(tmp_path, "hold", env=env)
    pid = daemon(hil.token)
    code, out, err = hil.finish()
    assert code == 0, out + err
    assert survivors(hil.token) == [] and not procfs.alive(pid)


def test_a_killed_controller_takes_the_daemon_with_it(tmp_path):
    hil = run(tmp_path, "long")
    pid = daemon(hil.token)
    hil.signal(signal.SIGKILL)
    hil.finish()
    assert survivors(hil.token) == [] and not procfs.alive(pid)


@pytest.mark.parametrize("env", CGROUPS)
def test_a_killed_leash_takes_the_daemon_with_it(tmp_path, env):
    hil = run(tmp_path, "long", env=env)
    pid = daemon(hil.token)
    hil.wait_for(lambda line: line == "long: record", "the component ready")  # the daemon comes before "ready"
    os.kill(wait_find(hil.token, "escaper.py", leash=True), signal.SIGKILL)
    code, out, err = hil.finish()
    assert code == 3, out + err
    bench = json.loads((tmp_path / "run" / "results.json").read_text())["benches"][0]
    assert bench["error"].startswith("target 'hpc': component 'escaper' lost its leash (the supervising process "
                                     "was killed by SIGKILL) and was stopped with it while running"), bench
    assert survivors(hil.token) == [] and not procfs.alive(pid)


def test_a_tree_whose_controller_and_leash_died_at_once_is_ended_by_the_next_hil(tmp_path):
    first = run(tmp_path, "long")
    pid = daemon(first.token)
    leash = wait_find(first.token, "escaper.py", leash=True)
    os.kill(first.proc.pid, signal.SIGKILL)
    os.kill(leash, signal.SIGKILL)
    first.finish()
    # nobody is left to end it until a hil on this host starts a child (another one may be first)
    second = run(tmp_path, "hold", out="again")
    code, out, err = second.finish()
    assert code == 0, out + err
    assert not procfs.alive(pid)
    assert survivors(first.token) == [] and survivors(second.token) == []


@NO_CGROUPS
def test_in_a_cgroup_not_even_a_daemon_that_scrubbed_its_environment_escapes(tmp_path):
    hil = run(tmp_path, "scrub")
    component = wait_find(hil.token, "escaper.py", "scrub")
    group = Path(f"/proc/{component}/cgroup").read_text().strip().rpartition("/")[2]
    assert group.startswith("hil-")  # born in a cgroup of its own
    end = time.monotonic() + PATIENCE_S
    while (pid := next((p for p in procfs.processes() if f"escaper-daemon-{hil.token}" in procfs.cmdline(p)),
                       None)) is None:
        assert time.monotonic() < end, "the scrubbed daemon never showed up"
        time.sleep(0.05)
    assert not procfs.environ(pid)  # nothing marks it as the run's
    os.kill(wait_find(hil.token, "escaper.py", leash=True), signal.SIGKILL)
    code, out, err = hil.finish()
    assert code == 3, out + err
    assert not procfs.alive(pid)
    assert survivors(hil.token) == []
    assert not (cgroup.base() / group).exists()  # removed once empty
