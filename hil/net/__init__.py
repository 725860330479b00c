"""Networks of a rig (``kind: ethernet`` buses): who has which address and which UDP ports.

A real network is a host interface; hil's address on it and each target's are written in the
rig. An emulated network stays on this machine: every address is a loopback address (127.0.0.0/8,
all of which Linux routes to ``lo``), so each emulated target is reachable at its own address.
Addresses left out are given in order: the N-th ethernet bus of the rig (from 1) is 127.0.N.0/24,
hil is 127.0.N.1, and the network's targets 127.0.N.2, .3, … in the order the rig names them.

Components learn their networks from ``HIL_NETS`` (JSON, beside ``HIL_BUSES``)::

    {"lan": {"address": "127.0.1.2", "ports": {"lidar": 2368},          # this target
             "hil": {"address": "127.0.1.1", "ports": {"brake": 6000}},  # where hil listens
             "targets": {"hpc": {"address": "127.0.1.2", "ports": {...}}, ...}}}
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hil.spec.rig import Rig

ENV_VAR = "HIL_NETS"
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
HIL = "hil"  # the endpoint name of hil itself in a network's plan


@dataclass(frozen=True)
class Endpoint:
    """An address on a network and the UDP ports (name → number) listened on there."""

    address: str
    ports: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"address": self.address, "ports": dict(self.ports)}


@dataclass(frozen=True)
class Network:
    """One ethernet bus with every address settled: hil's and each attached target's."""

    name: str
    emulated: bool
    interface: str | None
    hil: Endpoint
    targets: dict[str, Endpoint]


def _ipv4(text: str | None) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(text) if text is not None else None
    except ValueError:
        return None


def network_problems(rig: Rig) -> list[tuple[tuple, str]]:
    """What a single field cannot see: addresses that are not IPv4, outside loopback on an emulated
    network, missing on a real one, or used twice; attachments to buses that are no network."""
    out: list[tuple[tuple, str]] = []
    nets = {n: b for n, b in rig.buses.items() if b.kind == "ethernet"}
    for name, bus in nets.items():
        loc: tuple = ("buses", name)
        if bus.emulated and bus.interface is not None:
            out.append((loc + ("interface",), "an emulated network is loopback: 'interface' names a real "
                                              "network's host interface"))
        if not bus.emulated and (bus.interface is None or bus.address is None):
            out.append((loc, "a real network needs 'interface' and hil's 'address' on it (or 'emulated: true')"))
        out += _address_problems(loc + ("address",), bus.address, bus.emulated)
    for tname, target in rig.targets.items():
        for net, att in getattr(target, "networks", {}).items():
            loc = ("targets", tname, "networks", net)
            on = rig.buses.get(net)
            if on is None or on.kind != "ethernet":
                known = ", ".join(sorted(nets)) or "none"
                what = "unknown network" if on is None else f"{on.kind} bus, not a network:"
                out.append((loc, f"{what} {net!r}; the rig's networks (ethernet buses): {known}"))
                continue
            if not bus.emulated and att.address is None:
                out.append((loc, "a target on a real network needs its 'address'"))
            out += _address_problems(loc + ("address",), att.address, bus.emulated)
    for name in nets:
        seen: dict[str, str] = {}
        for who, ep in _explicit(rig, name):
            if ep in seen:
                out.append((_where(who, name), f"address {ep} is already {seen[ep]}'s on network {name!r}"))
            seen.setdefault(ep, who)
    return out


def _address_problems(loc: tuple, text: str | None, emulated: bool) -> list[tuple[tuple, str]]:
    if text is None:
        return []
    addr = _ipv4(text)
    if addr is None:
        return [(loc, f"expected an IPv4 address such as 127.0.1.2, got {text!r}")]
    if emulated and addr not in LOOPBACK:
        return [(loc, f"an emulated network stays on this machine: expected a loopback address "
                      f"(127.0.0.0/8), got {text}")]
    return []


def _explicit(rig: Rig, net: str) -> list[tuple[str, str]]:
    """(who, address) written in the rig for network ``net`` (who: ``hil`` or a target)."""
    bus = rig.buses[net]
    assert bus.kind == "ethernet"  # the callers' networks
    out = [(HIL, str(_ipv4(bus.address)))] if _ipv4(bus.address) else []
    for tname, target in rig.targets.items():
        att = getattr(target, "networks", {}).get(net)
        if att is not None and _ipv4(att.address):
            out.append((tname, str(_ipv4(att.address))))
    return out


def _where(who: str, net: str) -> tuple:
    return ("buses", net, "address") if who == HIL else ("targets", who, "networks", net, "address")


def plan(rig: Rig) -> dict[str, Network]:
    """Every network of ``rig`` with the addresses left out given (see the module's docstring)."""
    out = {}
    ethernet = [n for n, b in rig.buses.items() if b.kind == "ethernet"]
    for k, name in enumerate(ethernet, start=1):
        bus = rig.buses[name]
        assert bus.kind == "ethernet"
        taken = {addr for _, addr in _explicit(rig, name)}
        free = (f"127.0.{k}.{i}" for i in range(1, 255) if f"127.0.{k}.{i}" not in taken)
        hil = Endpoint(bus.address or next(free), dict(bus.ports))
        targets = {}
        for tname, target in rig.targets.items():
            att = getattr(target, "networks", {}).get(name)
            if att is not None:
                targets[tname] = Endpoint(att.address or next(free), dict(att.ports))
        out[name] = Network(name, bus.emulated, bus.interface, hil, targets)
    return out


def env(rig: Rig, target: str) -> dict[str, str]:
    """``{"HIL_NETS": json}`` for a component of ``target``: each network it is on (empty: none)."""
    nets = {}
    for name, net in plan(rig).items():
        own = net.targets.get(target)
        if own is not None:
            nets[name] = {**own.as_json(), "hil": net.hil.as_json(),
                          "targets": {t: ep.as_json() for t, ep in net.targets.items()}}
    return {ENV_VAR: json.dumps(nets)} if nets else {}


def destinations(rig: Rig) -> dict[str, tuple[str, str, int]]:
    """``TARGET.PORT`` → (network, address, port number) for every port a target declares."""
    out = {}
    for name, net in plan(rig).items():
        for tname, ep in net.targets.items():
            for pname, port in ep.ports.items():
                out[f"{tname}.{pname}"] = (name, ep.address, port)
    return out


def from_env(name: str, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Inside a component: network ``name`` from ``HIL_NETS`` (its address, ports, hil's, peers')."""
    import os

    from hil.errors import BusError

    raw = (os.environ if environ is None else environ).get(ENV_VAR)
    nets = json.loads(raw) if raw else {}
    if name not in nets:
        raise BusError(f"network {name!r} is not in {ENV_VAR}; it has: {', '.join(sorted(nets)) or 'none'}")
    return nets[name]
