"""``hil simbus serve RIG``: serve a rig's emulated buses in the foreground and say how to attach.

Useful to poke at an emulated rig by hand: python-can tools (``python -m can.viewer -i simcan -c
SOCKET``), a serial terminal on the host tty, or your own program under ``HIL_BUSES``.
"""

from __future__ import annotations

import click

from hil.cli.app import App, plain


@click.group()
def simbus() -> None:
    """The emulated CAN / serial buses of a rig (the simbus broker)."""


@simbus.command()
@click.argument("rig_file", metavar="RIG", type=click.Path(dir_okay=False))
@click.option("--dir", "folder", type=click.Path(file_okay=False),
              help="Folder for the bus sockets (created 0700); a fresh temporary folder by default.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for random faults.")
@click.pass_obj
def serve(app: App, rig_file: str, folder: str | None, seed: int) -> None:
    """Serve RIG's emulated buses until Ctrl-C or SIGTERM (exit 0) and print how to attach to each."""
    import json
    import shlex
    import shutil
    import tempfile
    from pathlib import Path

    from hil.lifecycle import signals
    from hil.simbus.broker import Broker
    from hil.simbus.service import broker_config, private_folder
    from hil.spec.load import load_rig
    from hil.spec.rig import SerialBus

    rig = load_rig(rig_file).model
    if not any(bus.emulated for bus in rig.buses.values()):
        app.abort(f"rig {rig.name} has no emulated buses: nothing to serve")
    base = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="hil-simbus-"))
    broker = Broker(broker_config(rig, private_folder(base), seed))
    try:
        info = broker.attach_info()
        env: dict[str, dict] = {}
        app.print(f"[bold]simbus[/] serving rig {rig.name} (pid {info['pid']}); Ctrl-C stops")
        for name, path in info["can"].items():
            env[name] = {"interface": "simcan", "channel": path}
            app.print(f"  can    [cyan]{name}[/]: " + plain(f'can.Bus(interface="simcan", channel="{path}")'))
            app.print(plain(f"           python -m can.viewer -i simcan -c {shlex.quote(path)}"), level=1)
        for name, ends in info["serial"].items():
            bus = rig.buses[name]
            assert isinstance(bus, SerialBus)  # the broker links the rig's serial buses
            env[name] = {"port": ends["device"], "baudrate": bus.baudrate}
            app.print(f"  serial [cyan]{name}[/]: " + plain(f"host {ends['host']}  device {ends['device']}"))
        app.print(plain(f"  export HIL_BUSES={shlex.quote(json.dumps(env))}"))
        with signals.stopping(broker.stop):  # Ctrl-C, SIGTERM or SIGHUP: stop serving, then clean up
            broker.serve()
    finally:
        broker.close()
        if folder is None:
            shutil.rmtree(base, ignore_errors=True)
    app.print("simbus stopped", level=-1)
