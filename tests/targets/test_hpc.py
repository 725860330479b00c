"""What the HPC drivers share (hil.targets.hpc): a component's environment and argv reach it
exactly, and what no process can be given (a variable name that is not a name, a NUL byte) is
refused before anything is deployed. Run here with the local driver and real processes; the SSH
driver is tested with the same content in test_ssh.py."""

from __future__ import annotations

import json
import sys

import pytest

from hil.errors import DeployError
from hil.targets import create_target

from . import hostile


def make(sf, tmp_path, comp: dict):
    rig = sf.rig()
    target = create_target("hpc", rig.targets["hpc"], rig, None, tmp_path / "run", lambda line: None)
    target.grace_ns = 1_000_000_000
    return target, sf.components(sf.stack({"x": comp}))


def test_hostile_values_and_arguments_reach_the_process_exactly(sf, tmp_path):
    """Regression guard: the local driver never had a shell; {python} is expanded, nothing else."""
    marker = tmp_path / "pwned"
    args, env = hostile.argv(marker), hostile.values(marker)
    target, components = make(sf, tmp_path, {"argv": [sys.executable, "-c", hostile.SHOW, *args], "env": env,
                                             "ready": {"console": "^ready$", "timeout": "60s"}})
    with target:
        target.deploy(components)
        target.start()
        target.wait_ready()
        shown = json.loads(next(line.text for line in target.log.tail("x") if line.text.startswith("{")))
    assert shown == {"argv": [a.replace("{python}", sys.executable) for a in args], "env": env}
    assert not marker.exists()


@pytest.mark.parametrize("index", range(9))
def test_an_environment_name_that_is_not_a_name_is_refused_before_deploy(sf, tmp_path, index):
    marker = tmp_path / "pwned"
    name = hostile.bad_names(marker)[index]
    target, components = make(sf, tmp_path, {"argv": ["true"]})
    components = {"x": components["x"].model_copy(update={"env": {name: "v"}})}  # whatever the loader allows
    with target, pytest.raises(DeployError) as exc:
        target.deploy(components)
    assert str(exc.value) == (f"target 'hpc': component 'x': environment variable name {name!r} is not a name "
                              "(letters, digits and _, not starting with a digit); refused")
    assert not marker.exists() and not (tmp_path / "run" / "targets" / "hpc").exists()


@pytest.mark.parametrize("update, message", [
    ({"env": {"A": "x\0y"}}, "environment variable A holds a NUL byte, which no process environment can carry"),
    ({"argv": ["sh", "-c", "true\0; touch pwned"]}, "argv[2] holds a NUL byte, which no program argument can carry"),
])
def test_a_nul_byte_is_refused_before_deploy(sf, tmp_path, update, message):
    target, components = make(sf, tmp_path, {"argv": ["true"]})
    components = {"x": components["x"].model_copy(update=update)}
    with target, pytest.raises(DeployError) as exc:
        target.deploy(components)
    assert str(exc.value) == f"target 'hpc': component 'x': {message}; refused"
