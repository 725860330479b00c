"""``command``: flash with an external tool (openocd, pyocd, esptool, st-flash, stm32flash).

The rig gives an argv template; ``{image}`` (the image file), ``{target}`` (the rig target name) and,
when the rig names the flasher's serial bus, ``{port}`` and ``{baudrate}`` are substituted; nothing
else is interpreted — there is no shell. A value always stays inside the one argument it is put in.
Standing alone (``"{image}"``) it may be anything but NUL; put into a longer argument (openocd's
``-c "program {image} verify"``, which the tool parses as a script) it must be plain — letters,
digits and ``/ . _ - + , : @ = %`` — or the flash is refused rather than leaving the tool to split
or interpret it. The tool is a supervised child (:func:`hil.lifecycle.children.spawn`) with a
time-out: it and everything it started are killed when the time runs out, or when the run is
stopped. Its output is kept and returned, and quoted in the :class:`FlashError` when it fails.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from hil.errors import FlashError
from hil.lifecycle.children import spawn
from hil.flash import FlashJob, FlashMethod, FlashProgress, no_progress
from hil.spec.common import format_duration
from hil.spec.rig import CommandFlash, FlashSpec, SerialBus

OUTPUT_TAIL = 2000
PLAIN = re.compile(r"[A-Za-z0-9/._+,:@=%-]*")


def expand(argv: list[str], fields: dict[str, str]) -> list[str]:
    """``argv`` with each ``{name}`` of ``fields`` replaced in one pass (a value is never expanded
    again); FlashError for a NUL byte anywhere, or a value that is not plain inside a longer argument."""
    for i, arg in enumerate(argv):
        if "\0" in arg:
            raise FlashError(f"command argv[{i}] holds a NUL byte; refused")
    for name, value in fields.items():
        if "\0" in value:
            raise FlashError(f"command: {{{name}}} would be {value!r}, which holds a NUL byte; refused")
    if not fields:
        return list(argv)
    pattern = re.compile("|".join(re.escape("{" + name + "}") for name in fields))

    def put(arg: str) -> str:
        if pattern.fullmatch(arg):  # the whole argument: any value goes, as it is
            return fields[arg[1:-1]]
        for m in pattern.finditer(arg):
            value = fields[m.group(0)[1:-1]]
            if not PLAIN.fullmatch(value):
                raise FlashError(f"command argument {arg!r}: {m.group(0)} would be {value!r}, which the tool "
                                 "could split or interpret inside a longer argument; give it as an argument "
                                 "of its own, or use a plain path (letters, digits, / . _ - + , : @ = %)")
        return pattern.sub(lambda m: fields[m.group(0)[1:-1]], arg)

    return [put(a) for a in argv]


def flash(spec: CommandFlash, fields: dict[str, str], progress: FlashProgress = no_progress,
          log: Path | None = None) -> str:
    """Run the flasher with ``fields`` put into its argv; return its combined output, which also
    goes whole into ``log`` — when it fails too: the start of a tool's output often says why.

    Raises FlashError on start failure, time-out or exit ≠ 0."""
    argv = expand(spec.argv, fields)
    progress("command", 0, 1)
    try:
        child = spawn(argv, what=f"command {argv[0]!r}", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                      stderr=subprocess.STDOUT)
    except OSError as exc:
        raise FlashError(f"command {argv[0]!r}: cannot run: {exc.strerror or exc}") from None
    proc = child.proc
    try:
        out, _ = proc.communicate(timeout=spec.timeout / 1e9)
        failure = None if proc.returncode == 0 else f"exited with code {proc.returncode}"
    except subprocess.TimeoutExpired:
        child.stop(0)
        out, _ = proc.communicate()
        failure = f"still running after {format_duration(spec.timeout)}, killed"
    finally:  # a stop (Ctrl-C, SIGTERM) ends the tool too, and whatever it left running
        child.stop(0)
    if log is not None:
        log.write_bytes(out)
    if failure is not None:
        raise FlashError(f"command {argv[0]!r}: {failure}" + _tail(out, log))
    progress("command", 1, 1)
    return out.decode("utf-8", errors="replace")


class CommandMethod(FlashMethod):
    """``method: command``: ``{image}``, ``{target}`` and, with a flash ``bus``, ``{port}`` and
    ``{baudrate}`` put into the argv; without a bus it runs with the MCU off."""

    def live(self, spec: FlashSpec) -> bool:
        return spec.bus is not None

    def flash(self, job: FlashJob) -> None:
        assert isinstance(job.spec, CommandFlash)  # the registry runs this method for its own model
        fields = {"image": str(job.image_path), "target": job.target}
        if job.spec.bus is not None:
            bus = job.rig.buses[job.spec.bus]
            assert isinstance(bus, SerialBus)  # checked with the rig: the flash bus is of the method's bus_kind
            fields["port"] = job.buses.serial_port(job.spec.bus, side="host")
            fields["baudrate"] = str(bus.baudrate)
        flash(job.spec, fields, progress=job.progress, log=job.folder / "flash.log")


def _tail(out: bytes, log: Path | None) -> str:
    text = out.decode("utf-8", errors="replace").strip()
    kept = f" (all of it in {log})" if log is not None and len(text) > OUTPUT_TAIL else ""
    return f"; output{kept}:\n{text[-OUTPUT_TAIL:]}" if text else "; no output"
