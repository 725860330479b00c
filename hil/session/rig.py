"""One rig brought up and down for one entry point: ``hil run``'s benches, the pytest plugin's
fixtures, ``hil deploy``, ``hil replay``, ``hil record`` and ``hil flash`` all go through it.

    with RigSession(rig, folder) as session:
        session.up()                      # the buses: simbus broker and ptys, real buses — or a held rig's
        session.deploy(stack)             # bundle → consoles → (power cycle) → deploy → start → ready
        session.record()                  # every recorded bus, console line, fault and phase: one MCAP
        session.inject(timeline, faults)  # the stimulus; the faults armed at its first frame
        session.hold(until_ns)            # wait, watching the broker, the components, the deadline
    # teardown, always and in this order: joiners turned away, recorder, targets, buses

The life cycle is explicit and guarded, in labgrid's spirit: ``idle → up → deployed``; a recording
runs or not in either. A step out of order raises :class:`SessionStateError`; a step that fails
latches ``broken``, after which only teardown is left; leaving the block ends ``down``. A session
that joins a rig another process holds (:mod:`hil.session.held`) attaches to its buses and nothing
more: it deploys nothing and tears down nothing of the holder's.

Phases (``bring-up``, ``deploy``, ``start``, ``ready``, ``record``, ``inject``, …) are entered
through :meth:`RigSession.enter`: a cancelled run stops there (:mod:`hil.cancel`), a deadline is
checked, the phase goes into the recording and to ``on_phase``.
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hil import cancel
from hil.clock import EPOCH_ENV, now_ns
from hil.errors import BusError, HilError, ReplayStoppedError, SessionStateError, TargetTimeoutError
from hil.session.consoles import Consoles
from hil.session.folders import CONSOLES, RECORDING
from hil.session.held import Held, publish, withdraw
from hil.session.inject import inject
from hil.spec.common import format_duration
from hil.spec.rig import Rig
from hil.values import ConsoleLine

if TYPE_CHECKING:
    from hil.buses import RigBuses
    from hil.recording import Recorder
    from hil.spec.faults import Fault
    from hil.spec.stack import Stack
    from hil.stimulus.injector import ReplayProgress
    from hil.stimulus.report import ReplayReport
    from hil.stimulus.timeline import Timeline
    from hil.targets.base import Target
    from hil.targets.deployment import Deployment, DeployStep

ALIVE_POLL_S = 0.05
DEADLINE_PHASES = ("start", "ready", "record", "inject", "settle")  # phases a deadline is checked on entering


class State(enum.Enum):
    IDLE = "idle"
    UP = "up"
    DEPLOYED = "deployed"
    BROKEN = "broken"
    DOWN = "down"


RUNNING = (State.UP, State.DEPLOYED)


@dataclass(frozen=True)
class Deadline:
    """When a run must be over (run clock), and what it is, for the message when it is not."""

    at_ns: int
    what: str  # "bench 'approach'"
    timeout_ns: int

    def message(self, phase: str) -> str:
        return f"{self.what} ran longer than its timeout of {format_duration(self.timeout_ns)} (in phase {phase})"


class RigSession:
    """A rig for the length of a ``with`` block, brought up in ``folder`` (see
    :mod:`hil.session.folders`), or joined (``joined``: the descriptor of the session holding it).

    ``on_phase(phase, message)`` learns every phase entered, ``on_target`` every deployment event
    (:class:`hil.targets.deployment.DeployStep`), ``on_console`` every console line (they also go to
    ``folder/CONSOLES/SOURCE.log``, ``consoles`` being that folder's name, and into the recording)."""

    def __init__(self, rig: Rig, folder: Path, *, joined: Held | None = None, deadline: Deadline | None = None,
                 on_phase: Callable[[str, str], None] | None = None, on_target: Callable[[DeployStep], None] | None = None,
                 on_console: Callable[[ConsoleLine], None] | None = None, consoles: str = CONSOLES):
        self.rig = rig
        self.folder = Path(folder)
        self.joined = joined
        self.deadline = deadline
        self.state = State.IDLE
        self.broken_by = ""
        self.phase = "plan"
        self.buses: RigBuses | None = None
        self.deployment: Deployment | None = None
        self.recorder: Recorder | None = None
        self.consoles = Consoles(self.folder / consoles)
        self._on_phase, self._on_target, self._on_console = on_phase, on_target, on_console
        # what teardown ends, in its order: joiners turned away, the recording, the targets, the buses
        self._joiners, self._recording, self._targets, self._buses = ExitStack(), ExitStack(), ExitStack(), ExitStack()

    # -- life cycle --------------------------------------------------------------------------------

    def rig_buses(self) -> RigBuses:
        """The rig's buses, for a step that runs once they are up (bring-up comes first)."""
        assert self.buses is not None, "the rig's buses are not up"
        return self.buses

    def __enter__(self) -> RigSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        """Tear down what is up, in order, on every exit path; an error of the block comes first."""
        order = ExitStack()
        for part in (self._buses, self._targets, self._recording, self._joiners):  # last pushed ends first
            order.push(part)
        try:
            order.__exit__(*exc)
        finally:
            self.consoles.close()
            self.recorder = None
            self.state = State.DOWN

    def up(self) -> RigSession:
        """Bring the rig's buses up (or attach to the held rig's)."""
        from hil.buses import RigBuses

        with self._step("bring up", (State.IDLE,), State.UP):
            self.enter("bring-up")
            if self.joined is not None:  # the holder's run clock: a frame is at one Unix time in both recordings
                os.environ[EPOCH_ENV] = str(self.joined.epoch_offset_ns)
            joined = None if self.joined is None else self.joined.services()
            self.buses = self._buses.enter_context(RigBuses(self.rig, self.folder, joined=joined))
            self.check_alive()  # a held rig's holder may have gone since it was found
        return self

    def deploy(self, stack: Stack, *, bundle: Path | None = None, power_cycle: bool = False,
               timeout_ns: int | None = None) -> dict[str, Target]:
        """Deploy ``stack`` (a Stack) through :class:`~hil.targets.deployment.Deployment`: the bundle
        built or ``bundle`` checked, serial consoles opened, every power switch cycled if
        ``power_cycle``, then deploy → start → ready (``timeout_ns`` caps the ready conditions).
        Returns the targets by name."""
        from hil.targets.deployment import Deployment

        if self.joined is not None:
            raise SessionStateError(f"cannot deploy onto rig {self.rig.name!r}: {self.joined.describe()} has it")
        with self._step("deploy", (State.UP,), State.DEPLOYED):
            self.enter("deploy")
            self.deployment = self._targets.enter_context(Deployment(
                self.rig, stack, self.rig_buses(), self.folder, bundle=bundle, on_event=self._target_event,
                on_console=self._console))
            self.deployment.up(power_cycle, timeout_ns)
        return dict(self.deployment.targets)

    def target(self, name: str) -> Target:
        """The driver of rig target ``name`` outside a stack (``hil flash``), stopped at teardown."""
        from hil.targets import create_target

        with self._step(f"reach target {name!r}", RUNNING):
            target = create_target(name, self.rig.targets[name], self.rig, self.rig_buses(), self.folder, self._console)
            self._targets.callback(target.stop)
        return target

    def record(self, path: Path | None = None, names: Iterable[str] | None = None,
               metadata: dict[str, Any] | None = None) -> Recorder:
        """Start recording into ``path`` (default ``folder/recording.mcap``) the buses ``names`` (default:
        :meth:`recorded`), every console line and fault, and the phases; returns the Recorder. It
        runs until :meth:`stop_recording` or teardown. Its metadata says which targets were
        power-cycled before deploying (``power_cycled``), when this session deployed."""
        from hil.recording import Recorder

        if self.recorder is not None:
            raise SessionStateError(f"rig {self.rig.name!r}: already recording into {self.recorder.path}")
        with self._step("record", RUNNING):
            self.enter("record")
            recording = ExitStack()
            self.recorder = recording.enter_context(Recorder(
                path or self.folder / RECORDING, self.buses, self.recorded(names), {
                    "rig": self.rig.name, **self._deployed(), **(metadata or {})}))
            recording.callback(self._detach)
            recording.push(self._bus_stats)
            self.consoles.recorder = self.recorder
            self._recording = recording
        return self.recorder

    def stop_recording(self, *exc: Any) -> None:
        """End the recording (``exc``: the exception ending it, if one does: then a bus that went
        down with it is no news)."""
        recording, self._recording = self._recording, ExitStack()
        recording.__exit__(*(exc or (None, None, None)))

    def inject(self, timeline: Timeline | None, faults: dict[str, list[Fault]] | None = None, *,
               timed_release: bool = True, on_progress: Callable[[ReplayProgress], None] | None = None,
               ) -> tuple[int, ReplayReport | None]:
        """Play ``timeline`` (:func:`hil.session.inject.read_stimulus`), arming ``faults`` at its
        first frame; returns its start on the run clock and the ReplayReport. The deadline stops it."""
        with self._step("inject", RUNNING):
            self.enter("inject")
            try:
                return inject(timeline, faults or {}, self.rig_buses(), self.recorder,
                              None if self.deadline is None else self.deadline.at_ns,
                              timed_release=timed_release, on_progress=on_progress)
            except ReplayStoppedError:  # stopped at the deadline: there is one
                assert self.deadline is not None
                raise TargetTimeoutError(f"{self.deadline.message(self.phase)}: the replay was stopped") from None
            except HilError:
                self._check_buses()  # a dead broker (or holder) is the cause, whatever the injector saw of it
                raise

    def settle(self, duration_ns: int) -> None:
        """Let the stack answer for ``duration_ns`` after a stimulus (phase ``settle``)."""
        self.enter("settle")
        self.hold(now_ns() + duration_ns)

    def hold(self, until_ns: int | None = None, on_tick: Callable[[], None] | None = None) -> None:
        """Wait until ``until_ns`` on the run clock (None: until stopped), calling ``on_tick`` as it
        goes; raise at once when the rig's holder, the simbus broker or a component died, or the
        deadline passed (the broker first: without it every component loses its buses)."""
        with self._step("hold", RUNNING):
            while True:
                cancel.check()
                self.check_alive()
                self._check_deadline()
                if on_tick is not None:
                    on_tick()
                left = None if until_ns is None else until_ns - now_ns()
                if left is not None and left <= 0:
                    return
                time.sleep(ALIVE_POLL_S if left is None else min(ALIVE_POLL_S, left / 1e9))

    def accept_joiners(self, directory: Path) -> Path:
        """Publish this session for joiners (``hil record`` / ``hil replay`` of this user) in the
        lease folder ``directory``, until teardown; returns the descriptor's path."""
        with self._step("accept joiners", RUNNING):
            held = Held.of_this_process(self.rig, self.folder, self.rig_buses().attach_info(), self.console_buses(),
                                        None if self.recorder is None else self.recorder.path)
            path = publish(directory, held)
            self._joiners.callback(withdraw, directory, held)
        return path

    # -- what is up --------------------------------------------------------------------------------

    def check_alive(self) -> None:
        """Raise BusError if the rig's holder or the simbus broker ended, DeployError if a component died."""
        self._check_buses()
        if self.deployment is not None:
            self.deployment.check_alive()

    def recorded(self, chosen: Iterable[str] | None = None) -> list[str]:
        """The buses a recording takes: ``chosen``, else every bus with ``record: true`` but the
        serial buses read as consoles (their lines reach the recording as lines)."""
        consoles = self.console_buses()
        if chosen is None:
            return [n for n, b in self.rig.buses.items() if b.record and (b.kind == "can" or n not in consoles)]
        taken = [n for n in chosen if n in consoles and self.joined is not None]
        if taken and self.joined is not None:  # a tty has one reader: the holder's console reader would lose what we read
            raise SessionStateError(f"bus {taken[0]!r} is a console {self.joined.describe()} reads; its lines are "
                                    f"in {Path(self.joined.folder) / CONSOLES}")
        return list(chosen)

    def console_buses(self) -> set[str]:
        """The serial buses read as targets' consoles: those the session this one joined reads,
        else every target's (a target deployed here reads its console)."""
        if self.joined is not None:
            return set(self.joined.consoles)
        return {t.console for t in self.rig.targets.values() if t.console}

    # -- phases ------------------------------------------------------------------------------------

    def enter(self, phase: str, message: str = "") -> None:
        """Enter ``phase``: stop here if the run was cancelled, check the deadline (on the phases
        that bound a bench), record it, tell ``on_phase``."""
        cancel.check()
        if phase in DEADLINE_PHASES:
            self._check_deadline()
        self.phase = phase
        if self.recorder is not None:
            self.recorder.event("phase", {"phase": phase})
        if self._on_phase is not None:
            self._on_phase(phase, message)

    # -- helpers -----------------------------------------------------------------------------------

    @contextmanager
    def _step(self, what: str, allowed: tuple[State, ...], then: State | None = None) -> Iterator[None]:
        """Guard a step: check the state, run it, move on — or latch broken."""
        if self.state not in allowed:
            why = f" ({self.broken_by})" if self.state is State.BROKEN else ""
            raise SessionStateError(f"rig {self.rig.name!r}: cannot {what} while {self.state.value}{why}; "
                                    f"expected {' or '.join(s.value for s in allowed)}")
        try:
            yield
        except BaseException as exc:
            from hil.targets.deployment import first_line

            self.state, self.broken_by = State.BROKEN, first_line(exc)
            raise
        if then is not None:
            self.state = then

    def _check_buses(self) -> None:
        if self.joined is not None and not self.joined.alive():
            raise BusError(f"{self.joined.describe()} ended; its buses went down with it")
        if self.buses is not None:
            self.buses.check_alive()

    def _check_deadline(self) -> None:
        if self.deadline is not None and now_ns() > self.deadline.at_ns:
            raise TargetTimeoutError(self.deadline.message(self.phase))

    def _target_event(self, event: DeployStep) -> None:
        """Deployment steps (every target deploys, then every target starts, then all wait) → phases."""
        phase = {"starting": "start", "waiting": "ready"}.get(event.phase)
        if phase is not None and phase != self.phase:
            self.enter(phase)
        if self._on_target is not None:
            self._on_target(event)

    def _deployed(self) -> dict[str, Any]:
        """What the recording's metadata says of this session's deployment."""
        return {} if self.deployment is None else {"power_cycled": self.deployment.power_cycled}

    def _console(self, line: ConsoleLine) -> None:
        self.consoles.add(line)
        if self._on_console is not None:
            self._on_console(line)

    def _detach(self) -> None:
        """The recording is about to close: consoles and phases stop going into it."""
        self.consoles.detach()
        self.recorder = None

    def _bus_stats(self, exc_type: type[BaseException] | None, *_: object) -> None:
        """A recording that ends well ends with each emulated CAN bus's statistics (analysis reads
        the overruns from them)."""
        if exc_type is None and self.recorder is not None:
            emulated = [n for n, b in self.rig.buses.items() if b.kind == "can" and b.emulated]
            self.recorder.event("bus-stats", {name: self.rig_buses().stats(name) for name in emulated})
