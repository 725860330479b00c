"""The timeline: stimulus sources merged into one ordered list of sends on rig buses.

Times are worked out in three stages:

1. **log time** — what each file says;
2. **stimulus time** — each source's window (``start``/``end`` from its first event) starts at 0,
   then the source is placed at its ``offset``. Waits (``at``) and override windows are stimulus
   time. ``start: first-event`` drops the silence before the earliest event of all sources;
   ``immediately`` keeps it (it is the earliest ``offset``: a window counts from its first event);
3. **play time** — gaps longer than ``skip_gaps_over`` shrink to that length, everything is divided
   by ``rate``, the timeline is repeated ``loop`` times (each repetition one period later: the span
   plus the median gap between events), and ``delay`` is added. The injector sends step ``i`` at
   ``play start + steps[i].t_ns``.

Bounds, checked before anything is expanded: at most :data:`MAX_STEPS` steps and waits after
loops, and no silence in play time longer than ``max_gap`` — before the first frame (``delay``,
``offset``) or between two frames (a corrupt timestamp, a paused logger, a tiny ``rate``) — so a
replay never plays hours of nothing and a bench never fails on its timeout for it.

Packet captures (pcap, pcapng) map a datagram's original destination to a target's port
(``TARGET.PORT``) on a network; see :mod:`hil.stimulus.pcap`. Channel maps: a source's ``map`` sends log channel → rig bus; channels it does not name are dropped
(and counted). Without a map, a log channel named like a rig bus goes to that bus, and otherwise
all channels go to the rig's only bus of that kind. Records of a file that are not frames (ASC
statistics, lines a ``lenient`` source skipped, …) are counted in ``Timeline.dropped`` too.
"""

from __future__ import annotations

import bisect
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hil.errors import StimulusError
from hil.spec.match import FrameMatch
from hil.spec.rig import Rig
from hil.spec.suite import PACKET_FORMATS, Source, Stimulus
from hil.stimulus.events import CanEvent, Event, PacketEvent, SerialEvent
from hil.stimulus.overrides import apply_overrides, load_dbc, message
from hil.stimulus.pcap import aims as packet_aims
from hil.stimulus.readers import FRAME_LIMIT, SourceLog, read_source

FOREVER = 1 << 62
MAX_STEPS = 2_000_000  # steps and waits of a timeline, loops included (each costs ~350 bytes twice)


@dataclass(frozen=True, slots=True)
class Step:
    """Send ``event`` on ``bus`` at ``t_ns`` after play start."""

    t_ns: int
    bus: str
    event: Event


@dataclass(frozen=True)
class Wait:
    """Before sending step ``index``, pause until ``until`` appears on its bus (or ``timeout_ns``).
    ``id`` is resolved from the DBC when ``until`` names a message."""

    index: int
    at_ns: int
    t_ns: int  # play time at which the pause begins
    until: FrameMatch
    id: int
    timeout_ns: int


@dataclass
class Timeline:
    steps: list[Step]
    waits: list[Wait] = field(default_factory=list)
    dbc: list[Path] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)  # reason → frames (or records) left out

    @property
    def span_ns(self) -> int:
        return self.steps[-1].t_ns - self.steps[0].t_ns if self.steps else 0

    def buses(self) -> list[str]:
        return sorted({s.bus for s in self.steps} | {w.until.bus for w in self.waits})


class _Origins:
    """Where each placed frame came from: a running number over all sources → source and record."""

    def __init__(self) -> None:
        self.logs: list[SourceLog] = []
        self.starts: list[int] = []
        self.total = 0

    def add(self, log: SourceLog) -> int:
        self.logs.append(log)
        self.starts.append(self.total)
        self.total += len(log.events)
        return self.starts[-1]

    def describe(self, origin: int) -> str:
        k = bisect.bisect_right(self.starts, origin) - 1
        return f"stimulus source {k + 1} ({self.logs[k].where(origin - self.starts[k])})"


def build_timeline(stimulus: Stimulus, rig: Rig, logs: dict[Path, SourceLog] | None = None) -> Timeline:
    """Read (or take from ``logs``), check and merge every source of ``stimulus`` for ``rig``."""
    dropped: Counter = Counter()
    placed: list[tuple[int, str, Event, int]] = []  # stimulus time, bus, event, origin
    origins = _Origins()
    for k, src in enumerate(stimulus.sources):
        log = (logs or {}).get(src.file) or read_source(src.file, src.format, src.lenient,
                                                        max(FRAME_LIMIT - origins.total, 0))
        for why, n in log.skipped.items():
            dropped[f"{why} in {log.path.name}"] += n
        placed += _place(log, src, rig, k, dropped, origins.add(log))
    if not placed:
        raise StimulusError("the stimulus has no events left after maps, filters and windows: "
                            + ", ".join(f"{n} {why}" for why, n in dropped.items()))
    placed.sort(key=lambda item: item[0])
    if stimulus.start == "first-event":
        first = placed[0][0]
        placed = [(t - first, bus, ev, o) for t, bus, ev, o in placed]
    planned = (len(placed) + len(stimulus.waits)) * stimulus.loop
    if planned > MAX_STEPS:
        raise StimulusError(f"the stimulus plans {len(placed):,} frames and {len(stimulus.waits)} waits × loop "
                            f"{stimulus.loop:,} = {planned:,} steps; at most {MAX_STEPS:,} are played (loop fewer "
                            "times, or play a shorter window)")
    _check_silence(placed, stimulus, origins)
    merged = [(t, bus, ev) for t, bus, ev, _ in placed]
    del placed
    db = load_dbc(stimulus.dbc)
    merged, n_drop = apply_overrides(merged, stimulus.overrides, db)
    if n_drop:
        dropped["dropout override"] += n_drop
    play = _play_times([t for t, _, _ in merged], stimulus.skip_gaps_over)
    period = _period(play)
    steps: list[Step] = []
    waits: list[Wait] = []
    wait_specs = sorted(stimulus.waits, key=lambda w: w.at)
    stim_times = [t for t, _, _ in merged]
    for n in range(stimulus.loop):
        shift = stimulus.delay + round(n * period / stimulus.rate)
        base = len(steps)
        steps += [Step(shift + round(p / stimulus.rate), bus, ev) for p, (_, bus, ev) in zip(play, merged)]
        for w in wait_specs:
            i = bisect.bisect_left(stim_times, w.at)
            t = shift + round(_wait_play_time(play, stim_times, i, w.at) / stimulus.rate)
            waits.append(Wait(base + i, w.at, t, w.until, _match_id(w.until, db, rig), w.timeout))
    return Timeline(steps, waits, list(stimulus.dbc), dropped)


def _check_silence(placed: list[tuple[int, str, Event, int]], stimulus: Stimulus, origins: _Origins) -> None:
    """Refuse silence in play time longer than ``max_gap``: before the first frame, between two
    frames (after ``skip_gaps_over`` and ``rate``), and before a closed-loop wait."""
    limit, skip, rate = stimulus.max_gap, stimulus.skip_gaps_over, stimulus.rate
    advice = (f"the longest silence allowed is max_gap ({limit / 1e9:g} s): shorten gaps with skip_gaps_over, "
              "or raise max_gap if the silence is meant")
    first = stimulus.delay + placed[0][0] / rate
    if first > limit:
        raise StimulusError(f"{origins.describe(placed[0][3])}: the first frame would be sent {first / 1e9:g} s "
                            f"after the replay starts (delay, offset and rate {rate:g}); {advice}")
    for (t0, _, _, _), (t1, _, _, origin) in zip(placed, placed[1:]):
        gap = t1 - t0
        if _played(gap, skip) / rate > limit:
            raise StimulusError(f"{origins.describe(origin)}: {_played(gap, skip) / rate / 1e9:g} s of silence before "
                                f"this frame ({gap / 1e9:g} s in the log, at rate {rate:g}); {advice}")
    times = [t for t, *_ in placed]
    for w in stimulus.waits:
        i = bisect.bisect_left(times, w.at)
        gap = w.at - (times[i - 1] if i else 0)
        if i and _played(gap, skip) / rate > limit:
            raise StimulusError(f"wait at {w.at / 1e9:g} s: {_played(gap, skip) / rate / 1e9:g} s of silence "
                                f"before it; {advice}")


def _played(gap: int, skip_over: int | None) -> int:
    """A gap as it is played: shortened to ``skip_over`` when longer."""
    return gap if skip_over is None else min(gap, skip_over)


def _place(log: SourceLog, src: Source, rig: Rig, k: int, dropped: Counter,
           origin: int) -> list[tuple[int, str, Event, int]]:
    """One source → ``(stimulus_t_ns, bus, event, origin)`` after its map, id filters and window;
    a datagram is aimed at its target's address and port (:func:`hil.stimulus.pcap.aims`)."""
    aims: dict[str, tuple[str, str, int]] = {}
    if log.format in PACKET_FORMATS or isinstance(log.events[0], PacketEvent):  # a capture, or camera frames
        where = f"stimulus source {k + 1} ({log.path.name})"
        if src.include_ids is not None or src.exclude_ids:
            raise StimulusError(f"{where}: its events are UDP datagrams (camera frames as RTP), not CAN frames: "
                                "'include_ids' and 'exclude_ids' do not apply")
        aims = packet_aims(log.channels(), src.map, rig, where)
        routes = {ch: net for ch, (net, _, _) in aims.items()}
    else:
        routes = _routes(log, src, rig, k)
    first = log.events[0].t_ns
    lo, hi = first + src.start, first + (src.end if src.end is not None else FOREVER)
    include = set(src.include_ids) if src.include_ids is not None else None
    exclude = set(src.exclude_ids)
    ports_in = set(src.include_ports) if src.include_ports is not None else None
    ports_out = set(src.exclude_ports)
    out = []
    for i, ev in enumerate(log.events):
        bus = routes.get(ev.channel)
        if bus is None:
            dropped[f"on unmapped channel {ev.channel!r}"] += 1
        elif not lo <= ev.t_ns < hi:
            dropped["outside the window"] += 1
        elif isinstance(ev, CanEvent) and ((include is not None and ev.id not in include) or ev.id in exclude):
            dropped["filtered by id"] += 1
        elif aims and not _port_passes(ev.channel, ports_in, ports_out):
            dropped["filtered by port"] += 1
        else:
            if isinstance(ev, PacketEvent):
                ev = PacketEvent(ev.t_ns, ev.channel, ev.data, aims[ev.channel][1:])
            out.append((ev.t_ns - lo + src.offset, bus, ev, origin + i))
    return out


def _port_passes(channel: str, include: set[int] | None, exclude: set[int]) -> bool:
    """Whether a datagram to ``channel`` (its capture destination ``ADDRESS:PORT``) passes the
    port filters; a camera topic has no port and passes."""
    port = channel.rpartition(":")[2]
    if not port.isdigit():
        return True
    return (include is None or int(port) in include) and int(port) not in exclude


def _routes(log: SourceLog, src: Source, rig: Rig, k: int) -> dict[str, str]:
    """Log channel → rig bus for one source, checked against the rig and the file."""
    where = f"stimulus source {k + 1} ({log.path.name})"
    channels = log.channels()
    kinds = {e.channel: ("serial" if isinstance(e, SerialEvent) else "can") for e in log.events}
    if src.map:
        unknown = [ch for ch in src.map if ch not in channels]
        if unknown:
            raise StimulusError(f"{where}: map names log channel(s) {', '.join(map(repr, unknown))}, but the "
                                f"file has: {', '.join(map(repr, sorted(channels)))}")
        routes = dict(src.map)
    else:
        routes = {}
        for ch in channels:
            if ch in rig.buses:
                routes[ch] = ch
            else:
                only = [n for n, b in rig.buses.items() if b.kind == kinds[ch]]
                if len(only) != 1:
                    raise StimulusError(
                        f"{where}: log channel {ch!r} needs a 'map' entry (channel → bus); the rig has "
                        f"{len(only)} {kinds[ch]} buses: {', '.join(only) or 'none'}")
                routes[ch] = only[0]
    for ch, bus in routes.items():
        spec = rig.buses.get(bus)
        if spec is None:
            raise StimulusError(f"{where}: channel {ch!r} maps to unknown bus {bus!r}; the rig has: "
                                f"{', '.join(sorted(rig.buses))}")
        if spec.kind != kinds[ch]:
            raise StimulusError(f"{where}: channel {ch!r} holds {kinds[ch]} data but maps to {spec.kind} bus {bus!r}")
    return routes


def _play_times(times: list[int], skip_over: int | None) -> list[int]:
    """Stimulus times with every gap longer than ``skip_over`` shortened to ``skip_over``."""
    if skip_over is None or not times:
        return list(times)
    out, cut = [], 0
    for i, t in enumerate(times):
        if i:
            gap = t - times[i - 1]
            cut += gap - _played(gap, skip_over)
        out.append(t - cut)
    return out


def _wait_play_time(play: list[int], stim: list[int], i: int, at: int) -> int:
    """Play time of stimulus time ``at``, which lies just before step ``i``."""
    if i == len(play):
        return play[-1] + (at - stim[-1])
    return max(play[i] - (stim[i] - at), play[i - 1] if i else 0)


def _period(play: list[int]) -> int:
    """Loop period: span plus the median gap, so a looped log keeps its rhythm at the seam."""
    if len(play) < 2:
        return play[-1] + 1 if play else 0
    gaps = [b - a for a, b in zip(play, play[1:]) if b > a]
    return play[-1] - play[0] + (int(statistics.median(gaps)) if gaps else 1)


def _match_id(match: FrameMatch, db, rig: Rig) -> int:
    bus = rig.buses.get(match.bus)
    if bus is None or bus.kind != "can":
        raise StimulusError(f"wait on bus {match.bus!r}: expected a CAN bus of rig {rig.name!r} "
                            f"({', '.join(n for n, b in rig.buses.items() if b.kind == 'can')})")
    if match.id is not None:
        if match.signal is not None:
            raise StimulusError(f"wait on bus {match.bus!r}: a signal condition needs 'message' (DBC), not 'id'")
        return match.id
    assert match.message is not None  # FrameMatch.problems: exactly one of 'id' or 'message'
    msg = message(db, match.message, f"wait on bus {match.bus!r}")
    if match.signal is not None and match.signal not in [s.name for s in msg.signals]:
        raise StimulusError(f"wait on bus {match.bus!r}: message {match.message!r} has no signal {match.signal!r}")
    return msg.frame_id
