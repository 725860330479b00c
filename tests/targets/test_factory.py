"""The target factory: driver keys from specs, lazy driver table, unknown drivers named."""

from __future__ import annotations

import pytest

from hil.errors import DeployError
from hil.spec import load_rig
from hil.targets import components_for, driver_class, driver_key


def test_driver_keys_follow_the_rig(root):
    rig = load_rig(root / "rigs" / "lab-example.yaml").model
    assert driver_key(rig.targets["orin"]) == "hpc-ssh"
    assert driver_key(rig.targets["brake-mcu"]) == "mcu-real"
    sim = load_rig(root / "rigs" / "sim-minimal.yaml").model
    assert driver_key(sim.targets["hpc"]) == "hpc-local"
    assert driver_class("hpc-ssh").__name__ == "SshHpcTarget"


def test_unknown_driver_is_named():
    with pytest.raises(DeployError, match="no target driver 'hpc-telepathy'; known: hpc-local, hpc-ssh"):
        driver_class("hpc-telepathy")


def test_components_for_keeps_stack_order(sf):
    stack = sf.stack({"b": {"argv": ["x"]}, "a": {"argv": ["y"]}, "m": {"argv": ["z"], "target": "other"}})
    assert list(components_for(stack, "hpc")) == ["b", "a"]
