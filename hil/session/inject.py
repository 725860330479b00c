"""A stimulus onto the rig, and a bench's faults armed the moment the stimulus starts (their
windows count from there). The rig session's inject step, so a bench behaves the same under
``hil run`` and the pytest plugin, and ``hil replay`` records what a bench records."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from hil.clock import now_ns

if TYPE_CHECKING:
    from hil.buses import RigBuses
    from hil.harness import ErrorHistogram
    from hil.recording import Recorder
    from hil.spec.faults import Fault
    from hil.spec.rig import Rig
    from hil.spec.suite import Stimulus
    from hil.stimulus.injector import ReplayProgress
    from hil.stimulus.report import ReplayReport
    from hil.stimulus.timeline import Timeline


def arm_faults(faults: Mapping[str, list[Fault]], buses: RigBuses, recorder: Recorder | None, origin_ns: int) -> None:
    """Arm each bus's faults with their windows starting at ``origin_ns``; record each as ``fault.armed``."""
    for bus, items in faults.items():
        for fault in items:
            buses.faults(bus).arm(fault, origin_ns)
            if recorder is not None:
                recorder.event("fault.armed", {"bus": bus, **fault.model_dump(mode="json")}, origin_ns)


def read_stimulus(stimulus: Stimulus | None, rig: Rig) -> Timeline | None:
    """The bench's stimulus (None: nothing to play) read and checked in full — every source file,
    channel map and override — as the timeline to :func:`inject`. Called before the rig is brought
    up, so a corrupt file costs no deploy. Raises StimulusError naming the file and record."""
    from hil.stimulus.timeline import build_timeline

    return None if stimulus is None else build_timeline(stimulus, rig)


def inject(timeline: Timeline | None, faults: Mapping[str, list[Fault]], buses: RigBuses, recorder: Recorder | None,
           deadline_ns: int | None = None, *, timed_release: bool = True,
           on_progress: Callable[[ReplayProgress], None] | None = None) -> tuple[int, ReplayReport | None]:
    """Play ``timeline`` (from :func:`read_stimulus`; None: nothing to play) and arm ``faults`` for
    its start, before its first frame; ``timed_release`` and ``on_progress`` go to the injector
    (:func:`hil.stimulus.injector.play`).

    Returns the start on the run clock and the ReplayReport (None without a stimulus). The
    injected frames' echoes, the replay figures and the host's load as the injection starts and
    ends go into ``recorder`` (when there is one), as analysis expects them, and what the timeline
    left out (reason → count) goes into the replay event, hence the bench result. Raises
    ReplayStoppedError when ``deadline_ns`` stopped the replay."""
    from hil.stimulus.realtime import host_load

    def load(at: str) -> None:
        if recorder is not None:
            recorder.event("host-load", {"at": at, **host_load()})

    load("inject-start")
    try:
        return _play(timeline, faults, buses, recorder, deadline_ns, timed_release, on_progress)
    finally:
        load("inject-end")


def _histogram(values: Iterable[int]) -> ErrorHistogram:
    """A harness error histogram of ``values`` (ns): how late each datagram really went out is its
    network's delivery error, judged against the harness budget like a bus's."""
    from hil.harness import ErrorHistogram

    h = ErrorHistogram()
    for ns in values:
        h.add(ns)
    return h


def _play(timeline: Timeline | None, faults: Mapping[str, list[Fault]], buses: RigBuses, recorder: Recorder | None,
          deadline_ns: int | None, timed_release: bool, on_progress: Callable[[ReplayProgress], None] | None,
          ) -> tuple[int, ReplayReport | None]:
    from hil.stimulus.injector import play

    if timeline is None:
        origin = now_ns()
        arm_faults(faults, buses, recorder, origin)
        return origin, None
    started: list[int] = []

    def on_start(start_ns: int) -> None:  # before the first frame: faults hold from it on
        started.append(start_ns)
        arm_faults(faults, buses, recorder, start_ns)

    report = play(timeline, buses, on_progress=on_progress, timed_release=timed_release, on_start=on_start,
                  deadline_ns=deadline_ns)
    if recorder is not None:
        for bus, echoes in report.echoes.items():
            recorder.injected(bus, echoes)
        for net, sent in report.packets.items():
            recorder.injected_datagrams(net, report.host["senders"][net], [(t, *_aimed(timeline, k)) for t, k, _ in sent])
            recorder.harness(net, {"delivery": _histogram(late for _, _, late in sent).to_json()})
        recorder.event("replay", {**report.summary(), "left_out": dict(timeline.dropped),
                                  "lateness": list(report.lateness_ns)})
    return started[0], report


def _aimed(timeline: Timeline, step: int) -> tuple[str, int, bytes]:
    """Datagram ``step`` of ``timeline``: the address and port it was aimed at, its payload."""
    from hil.stimulus.events import PacketEvent

    event = timeline.steps[step].event
    assert isinstance(event, PacketEvent) and event.to is not None  # the injector sent it: an aimed datagram
    return (*event.to, event.data)
