"""Networks in the rig: ethernet buses, targets' addresses and ports, HIL_NETS; every mistake is
refused by `hil check` at its file:line:col."""

from __future__ import annotations

import json

import pytest

from hil import net
from hil.cli import cli
from hil.cli.app import run_guarded
from hil.spec.load import load_rig

GOOD = """\
name: r
buses:
  lan: {kind: ethernet, emulated: true, ports: {brake: 6000}}
  cam: {kind: ethernet, emulated: true}
targets:
  hpc:
    kind: hpc
    reach: {via: emulated}
    networks:
      lan: {ports: {lidar: 2368}}
      cam: {address: 127.0.2.9, ports: {video: 5004}}
  sensor:
    kind: hpc
    reach: {via: emulated}
    networks:
      lan: {}
"""


def check(capsys, tmp_path, text: str) -> list[str]:
    path = tmp_path / "rig.yaml"
    path.write_text(text)
    assert run_guarded(cli, ["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line.replace(str(path), "RIG") for line in err.splitlines()]


def test_emulated_addresses_are_loopback_one_per_target_and_reach_components(tmp_path):
    (tmp_path / "rig.yaml").write_text(GOOD)
    rig = load_rig(tmp_path / "rig.yaml").model
    nets = net.plan(rig)
    assert nets["lan"].hil == net.Endpoint("127.0.1.1", {"brake": 6000})
    assert {t: ep.address for t, ep in nets["lan"].targets.items()} == {"hpc": "127.0.1.2", "sensor": "127.0.1.3"}
    assert nets["cam"].hil.address == "127.0.2.1" and nets["cam"].targets["hpc"].address == "127.0.2.9"
    env = json.loads(net.env(rig, "hpc")["HIL_NETS"])
    assert env["lan"]["address"] == "127.0.1.2" and env["lan"]["ports"] == {"lidar": 2368}
    assert env["lan"]["hil"] == {"address": "127.0.1.1", "ports": {"brake": 6000}}
    assert env["lan"]["targets"]["sensor"] == {"address": "127.0.1.3", "ports": {}}
    assert net.from_env("cam", environ={"HIL_NETS": json.dumps(env)})["address"] == "127.0.2.9"
    assert net.destinations(rig) == {"hpc.lidar": ("lan", "127.0.1.2", 2368), "hpc.video": ("cam", "127.0.2.9", 5004)}


@pytest.mark.parametrize("change, expected", [
    (("cam: {kind: ethernet, emulated: true}", "cam: {kind: ethernet, emulated: true, address: 10.0.0.1}"),
     "RIG:4:50: buses.cam.address: an emulated network stays on this machine: expected a loopback address "
     "(127.0.0.0/8), got 10.0.0.1"),
    (("address: 127.0.2.9", "address: 127.0.2.300"),
     "RIG:11:22: targets.hpc.networks.cam.address: expected an IPv4 address such as 127.0.1.2, got '127.0.2.300'"),
    (("      lan: {}", "      lab: {}"),
     "RIG:16:7: targets.sensor.networks.lab: unknown network 'lab'; the rig's networks (ethernet buses): cam, lan"),
    (("cam: {kind: ethernet, emulated: true}", "cam: {kind: ethernet, interface: eth1}"),
     "RIG:4:3: buses.cam: a real network needs 'interface' and hil's 'address' on it (or 'emulated: true')"),
    (("cam: {kind: ethernet, emulated: true}", "cam: {kind: ethernet, emulated: true, address: 127.0.2.9}"),
     "RIG:11:22: targets.hpc.networks.cam.address: address 127.0.2.9 is already hil's on network 'cam'"),
    (("lidar: 2368", "lidar: 70000"),
     "RIG:10:28: targets.hpc.networks.lan.ports.lidar: expected a value ≤ 65535, got 70000"),
    (("lidar: 2368", "lidar.front: 2368"),
     "RIG:10:34: targets.hpc.networks.lan.ports.lidar.front: String should match pattern "
     "'^[A-Za-z][A-Za-z0-9_-]{0,31}$'"),
    (("    networks:\n      lan: {}", "    buses: [lan]"),
     "RIG:15:13: targets.sensor.buses[0]: 'lan' is a network: a target joins it under 'networks' with its "
     "address and ports"),
])
def test_network_mistakes_are_refused_at_their_place(capsys, tmp_path, change, expected):
    assert change[0] in GOOD
    lines = check(capsys, tmp_path, GOOD.replace(*change))
    assert lines[0] == f"error: {expected}"
