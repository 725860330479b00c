"""``hil flash``: flash one image onto one MCU target of a rig, with the rig's flash method."""

from __future__ import annotations

from pathlib import Path

import click

from hil.cli.app import App, lease_wait_option, plain


@click.command()
@click.argument("rig_file", metavar="RIG", type=click.Path(dir_okay=False, exists=True))
@click.argument("target")
@click.argument("image", type=click.Path(exists=True))
@click.option("--run-dir", type=click.Path(file_okay=False),
              help="Folder for bus sockets and an emulated MCU's flash (default: a temporary folder).")
@click.option("--version", "version", default=None,
              help="The version a raw .bin image is (the ECU must report it over UDS after flashing).")
@lease_wait_option
@click.pass_obj
def flash(app: App, rig_file: str, target: str, image: str, run_dir: str | None, version: str | None,
          lease_wait: float | None) -> None:
    """Flash IMAGE (a .hilfw image, a stub folder, or a real board's raw .bin) onto TARGET of RIG,
    showing progress."""
    from pydantic import ValidationError
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

    from hil.bench.lease import Lease
    from hil.firmware.build import load_image
    from hil.session import RigSession
    from hil.session.folders import scratch_folder
    from hil.spec import load_rig
    from hil.spec.load import error_message
    from hil.spec.rig import McuTarget
    from hil.targets.mcu import EmulatedMcuTarget, RealMcuTarget
    from hil.spec.stack import FirmwareComponent

    rig = load_rig(rig_file).model
    spec = rig.targets.get(target)
    if spec is None or spec.kind != "mcu":
        mcus = ", ".join(n for n, t in rig.targets.items() if t.kind == "mcu") or "none"
        app.abort(f"expected an MCU target of rig {rig.name!r} ({mcus}), got {target!r}")
    assert isinstance(spec, McuTarget)  # kind "mcu" is the built-in's: a plugin cannot replace it
    version = version or load_image(image).version
    if not version:
        app.abort(f"{image} is a raw image: nothing in it says its version; give --version")
    try:
        # validated as a stack file's entry (a path as text), hence not the Path-typed constructor
        comp = FirmwareComponent.model_validate({"kind": "firmware", "target": target,
                                                 "image": str(Path(image).resolve()), "version": version})
    except ValidationError as exc:
        app.abort(f"invalid --version: {error_message(exc.errors()[0])}")
    with Lease(rig.name, wait=lease_wait), scratch_folder("flash", run_dir) as folder, \
            RigSession(rig, folder) as session, \
            Progress(TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(),
                     console=app.console, disable=app.verbosity < 0) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=done, total=total)

        session.up()
        mcu = session.target(target)
        assert isinstance(mcu, (EmulatedMcuTarget, RealMcuTarget))  # an MCU target (above): a built-in driver
        mcu.progress = progress
        mcu.deploy({f"{target}-firmware": comp})
    method = spec.flash.method if spec.flash else "direct"
    app.print(f"[green]flashed[/] {plain(target)} with {plain(image)} ({plain(version)}) over {method}", level=-1)
