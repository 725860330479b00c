"""``hil check``: validate a rig and suites (and the stacks they deploy); show the rig topology."""

from __future__ import annotations

import click

from hil.cli.app import App, plain


@click.command()
@click.argument("files", nargs=-1, required=False, type=click.Path(dir_okay=False))
@click.option("--rig", envvar="HIL_RIG", type=click.Path(dir_okay=False),
              help="Rig file (also HIL_RIG); otherwise the first FILE is the rig.")
@click.pass_obj
def check(app: App, files: tuple[str, ...], rig: str | None) -> None:
    """Validate RIG [SUITE|STACK...]: exit 0 when every file is valid, 2 with every problem listed."""
    from pathlib import Path

    from hil.spec import check_files
    from hil.spec.check import is_rig_file

    files_list = list(files)
    from_env = click.get_current_context().get_parameter_source("rig") is click.core.ParameterSource.ENVIRONMENT
    if from_env and files_list and is_rig_file(Path(files_list[0])):
        rig = None  # a rig named on the command line wins over HIL_RIG
    if rig is None:
        if not files_list:
            app.abort("expected a rig file: hil check RIG [SUITE...] (or --rig / HIL_RIG)")
        rig = files_list.pop(0)
    checked = check_files(rig, files_list)
    _check_contents(checked)
    app.print(topology_tree(checked.rig.model), level=-1)
    for suite in checked.suites:
        s = suite.model
        app.print(f"suite [bold]{plain(s.name)}[/]: {len(s.benches)} bench(es) — ok", level=-1)
    if checked.health is not None:
        app.print(f"health suite [bold]{plain(checked.health.model.name)}[/] — ok", level=-1)
    app.print(f"[green]ok[/] {plain(rig)}" + "".join(f", {plain(f)}" for f in files_list), level=-1)


def _check_contents(checked) -> None:
    """What ``hil run`` refuses before it touches a rig, from the files' contents: every stack's
    firmware images and ready conditions, every bench's DBC names and units, and every bench's
    stimulus read and checked in full (its problem at the bench's ``stimulus``)."""
    from hil.session.inject import read_stimulus
    from hil.bench.plan import bench_database, stack_problems
    from hil.errors import SpecError, StimulusError

    rig = checked.rig.model
    problems = [line for stack in checked.stacks.values() for line in stack_problems(stack, rig)]
    for suite in checked.suites + ([checked.health] if checked.health else []):
        found = []
        for i, bench in enumerate(suite.model.benches):
            found += bench_database(suite.model, i)[1]
            try:
                read_stimulus(bench.stimulus, rig)
            except StimulusError as exc:
                found.append((("benches", i, "stimulus"), str(exc)))
        if found:
            problems += suite.error(found).problems
    if problems:
        raise SpecError(problems)


def topology_tree(rig):
    """The rig as a rich Tree: buses, targets (and how they are reached), power switches."""
    from rich.tree import Tree

    from hil.net import plan

    tree = Tree(f"[bold]rig {rig.name}[/]" + (f" — {plain(rig.description)}" if rig.description else ""))
    buses = tree.add("buses")
    networks = plan(rig)
    for name, bus in rig.buses.items():
        if bus.kind == "ethernet":
            how = "emulated (loopback)" if bus.emulated else plain(f"interface {bus.interface}")
            rate, extra = f"hil at {networks[name].hil.address}", _ports(networks[name].hil.ports)
        elif bus.kind == "can":
            how = "emulated (simbus)" if bus.emulated else plain(f"{bus.interface}:{bus.channel}")
            if bus.emulated and bus.interface:
                how += plain(f" through an emulated {bus.interface} adapter ({bus.channel})")
            rate = f"{bus.bitrate // 1000} kbit/s" + (f", FD data {bus.data_bitrate // 1000} kbit/s" if bus.fd and bus.data_bitrate else ", FD" if bus.fd else "")
            extra = f", {len(bus.faults)} fault(s)" if bus.faults else ""
        else:
            how = "emulated (pty)" if bus.emulated else plain(bus.port)
            rate, extra = f"{bus.baudrate} baud", ""
        buses.add(f"[cyan]{name}[/] {bus.kind} · {how} · {rate}{extra}")
    if rig.targets:
        targets = tree.add("targets")
        for name, t in rig.targets.items():
            if t.kind == "hpc":
                how = plain(f"ssh {t.reach.user}@{t.reach.host}:{t.reach.port}") if t.reach.via == "ssh" else \
                    "emulated (local processes)"
            else:
                how = "emulated MCU" if t.emulated else "real MCU"
                if t.flash is not None:
                    how += f", flash {t.flash.method}"
            node = targets.add(f"[magenta]{name}[/] {t.kind} · {how}")
            if t.buses:
                node.add("buses: " + ", ".join(t.buses))
            for net, plan_ in networks.items():
                if name in plan_.targets:
                    node.add(f"network {net}: {plan_.targets[name].address}{_ports(plan_.targets[name].ports)}")
            if t.console:
                node.add(f"console: {t.console}")
            if t.power:
                node.add(f"power: {t.power}")
    if rig.power:
        power = tree.add("power")
        for name, p in rig.power.items():
            power.add(f"{name} · {p.kind}")
    return tree


def _ports(ports: dict[str, int]) -> str:
    """UDP ports as ", ports camera 5004, lidar 2368" (nothing when there are none)."""
    return (", ports " + ", ".join(f"{plain(n)} {p}" for n, p in ports.items())) if ports else ""
