"""Latency probes: pair each stimulus event with its response, hop by hop.

Three pairings are built in (``Probe.pair``); each is a :class:`Pairer` in the ``hil.probe``
registry (:mod:`hil.registry`), and a plugin adds one with an entry point:

``next``
    each stimulus frame → the first response frame at or after it. Several stimuli may share one
    response (a 100 Hz sensor feeding a 50 Hz actuator).
``counter``
    each stimulus frame → the first later response carrying the same sequence number. A response
    answers one stimulus only: when several stimuli with the same counter precede it, the earliest
    keeps it and the later ones are counted as ``duplicates`` (neither paired nor missed). With
    ``modulo`` the counters are compared modulo that value (a wider response field).
``edge``
    each crossing of the stimulus signal over its threshold → the first crossing of the response
    signal over its threshold after it (or the first response frame, when the response side names
    no threshold).

A probe end with ``port`` reads datagrams of a network instead of CAN frames: those to that UDP
port (injected, or what the stack sent to hil), the counter a field at a byte offset or the RTP
header's sequence number or timestamp (``rtp``), so a camera frame or lidar packet pairs with the
CAN frame it caused, and chains run across hops as for frames. Its ``where`` conditions (a payload
field compared with a value, :class:`~hil.spec.match.FieldMatch`) keep only the datagrams that
meet them, as a CAN end's id keeps only its frames: a lidar packet that does not show the object is
no stimulus of "object seen", so it is neither paired nor missed.

A stimulus whose response does not come within ``window`` is **missed**; it is never dropped. All
pairing is done with ``argsort``/``searchsorted`` over whole columns: no Python loop over frames.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from hil.analysis.signals import Column, Database, byte_column, frames_with_id, signal_column
from hil import registry
from hil.errors import AnalysisError
from hil.recording.frames import Frames
from hil.recording.loader import Datagram
from hil.spec.match import FieldMatch
from hil.spec.suite import Chain, Probe, ProbeEnd

MISSING = -1
RTP_FIELDS = {"sequence": (2, 2), "timestamp": (4, 4)}  # RFC 3550 header: offset, size (network order)


@dataclass(frozen=True)
class Pairing:
    """Stimulus times and, per stimulus, the response time (``MISSING`` when missed)."""

    stimulus_ns: np.ndarray
    response_ns: np.ndarray
    duplicates: int = 0

    @property
    def paired(self) -> np.ndarray:
        return self.response_ns != MISSING

    @property
    def latency_ns(self) -> np.ndarray:
        """Latencies of the paired stimuli, in stimulus order."""
        ok = self.paired
        return self.response_ns[ok] - self.stimulus_ns[ok]

    @property
    def missed(self) -> int:
        return int(np.count_nonzero(~self.paired)) - self.duplicates


@dataclass(frozen=True)
class ChainPairing:
    """End-to-end pairing through several probes: per-hop latencies of the complete chains."""

    hops: dict[str, np.ndarray]
    total_ns: np.ndarray
    missed: int
    stimulus_ns: np.ndarray


# -- pure pairing on time columns ----------------------------------------------------------------


def pair_next(stim_ns: np.ndarray, resp_ns: np.ndarray, window_ns: int) -> np.ndarray:
    """Per stimulus, the time of the first response at or after it within the window, or MISSING.

    Both inputs sorted ascending."""
    out = np.full(len(stim_ns), MISSING, np.int64)
    if len(resp_ns) == 0 or len(stim_ns) == 0:
        return out
    j = np.searchsorted(resp_ns, stim_ns, side="left")
    found = j < len(resp_ns)
    t = resp_ns[np.minimum(j, len(resp_ns) - 1)]
    ok = found & (t - stim_ns <= window_ns)
    out[ok] = t[ok]
    return out


def pair_counter(stim_ns: np.ndarray, stim_ctr: np.ndarray, resp_ns: np.ndarray,
                 resp_ctr: np.ndarray, window_ns: int) -> tuple[np.ndarray, int]:
    """Counter pairing; returns (response time per stimulus or MISSING, duplicates)."""
    out = np.full(len(stim_ns), MISSING, np.int64)
    if len(resp_ns) == 0 or len(stim_ns) == 0:
        return out, 0
    values, ranks = np.unique(np.concatenate([stim_ctr, resp_ctr]), return_inverse=True)
    s_rank, r_rank = ranks[: len(stim_ctr)].astype(np.int64), ranks[len(stim_ctr):].astype(np.int64)
    t0 = min(int(stim_ns[0]), int(resp_ns[0]))
    span = max(int(stim_ns[-1]), int(resp_ns[-1])) - t0 + 1
    if len(values) * span >= 2**62:
        raise AnalysisError(f"counter pairing over {len(values)} distinct counter values and a "
                            f"{span / 1e9:.0f} s span does not fit a 64-bit key; shorten the recording")
    # one sorted key per (counter, time): the first response of a counter after a time is one search
    r_key = r_rank * span + (resp_ns - t0)
    order = np.argsort(r_key, kind="stable")
    r_sorted = r_key[order]
    j = np.searchsorted(r_sorted, s_rank * span + (stim_ns - t0), side="left")
    jj = np.minimum(j, len(r_sorted) - 1)
    hit = order[jj]
    ok = (j < len(r_sorted)) & (r_rank[hit] == s_rank) & (resp_ns[hit] - stim_ns <= window_ns)
    # a response answers one stimulus: the earliest claimant keeps it, later ones are duplicates
    claimed = np.flatnonzero(ok)
    _, first = np.unique(hit[claimed], return_index=True)
    keep = np.zeros(len(stim_ns), bool)
    keep[claimed[first]] = True
    out[keep] = resp_ns[hit[keep]]
    return out, int(len(claimed) - len(first))


def crossings(col: Column, threshold: float, direction: str) -> np.ndarray:
    """Times at which ``col`` crosses ``threshold`` (rising: from below to at-or-above)."""
    prev, cur = col.value[:-1], col.value[1:]
    if direction == "rising":
        edge = (prev < threshold) & (cur >= threshold)
    else:
        edge = (prev > threshold) & (cur <= threshold)
    return col.t_ns[1:][edge]


def chain(pairings: list[Pairing]) -> ChainPairing:
    """Follow each first-hop stimulus through the hops: hop k starts at the first of its stimuli at
    or after hop k-1's response (the same frame when the hops share it). A hop's latency runs from
    the previous hop's response to its own, so the hops of a chain add up to its total."""
    first = pairings[0]
    at = first.response_ns.copy()
    alive = first.paired.copy()
    hops = [first.response_ns - first.stimulus_ns]
    for p in pairings[1:]:
        if len(p.stimulus_ns) == 0:
            alive[:] = False
            hops.append(np.zeros(len(at), np.int64))
            continue
        j = np.searchsorted(p.stimulus_ns, at, side="left")
        jj = np.minimum(j, len(p.stimulus_ns) - 1)
        alive &= (j < len(p.stimulus_ns)) & p.paired[jj]
        hops.append(p.response_ns[jj] - at)
        at = np.where(alive, p.response_ns[jj], at)
    names = [f"hop{i + 1}" for i in range(len(pairings))]
    return ChainPairing(
        hops={n: h[alive] for n, h in zip(names, hops)},
        total_ns=at[alive] - first.stimulus_ns[alive],
        missed=int(np.count_nonzero(~alive)) - first.duplicates,  # a repeat of a paired stimulus starts no chain
        stimulus_ns=first.stimulus_ns,
    )


# -- from the suite's probe definitions ------------------------------------------------------------


class Pairer(ABC):
    """A probe pairing (``hil.probe``): the stimulus events of a probe and, per stimulus, its
    response, from the recorded frames of the rig's buses (:func:`probe_frames` and
    :func:`field_column` read a probe end; :func:`pair_next` pairs two time columns) and the
    datagrams of its networks (:attr:`datagrams`, read by :meth:`times` and :meth:`column`)."""

    def __init__(self, datagrams: Mapping[str, Sequence[Datagram]] | None = None):
        self.datagrams = datagrams or {}

    @abstractmethod
    def pair(self, probe: Probe, buses: Mapping[str, Frames], db: Database) -> Pairing: ...

    def times(self, end: ProbeEnd, buses: Mapping[str, Frames], db: Database) -> np.ndarray:
        """When ``end``'s events were recorded: a port's datagrams, else a CAN id's frames."""
        return self.column(end, buses, db).t_ns if end.port is not None else probe_frames(end, buses, db).t_ns

    def column(self, end: ProbeEnd, buses: Mapping[str, Frames], db: Database) -> Column:
        """``end``'s counter field over time, from datagrams or frames."""
        if end.port is not None:
            return datagram_column(end, self.datagrams)
        return field_column(end, probe_frames(end, buses, db), db)


class NextPairer(Pairer):
    def pair(self, probe: Probe, buses: Mapping[str, Frames], db: Database) -> Pairing:
        stim, resp = self.times(probe.from_, buses, db), self.times(probe.to, buses, db)
        return Pairing(stim, pair_next(stim, resp, probe.window))


class EdgePairer(Pairer):
    def pair(self, probe: Probe, buses: Mapping[str, Frames], db: Database) -> Pairing:
        stim_frames, resp_frames = probe_frames(probe.from_, buses, db), probe_frames(probe.to, buses, db)
        assert probe.from_.threshold is not None  # checked with the suite: edge pairing needs a threshold
        stim = crossings(field_column(probe.from_, stim_frames, db), probe.from_.threshold, probe.from_.direction)
        if probe.to.threshold is None:
            resp = resp_frames.t_ns
        else:
            resp = crossings(field_column(probe.to, resp_frames, db), probe.to.threshold, probe.to.direction)
        return Pairing(stim, pair_next(stim, resp, probe.window))


class CounterPairer(Pairer):
    def pair(self, probe: Probe, buses: Mapping[str, Frames], db: Database) -> Pairing:
        s, r = self.column(probe.from_, buses, db), self.column(probe.to, buses, db)
        s_ctr, r_ctr = s.value.astype(np.int64), r.value.astype(np.int64)
        if probe.modulo:
            s_ctr, r_ctr = s_ctr % probe.modulo, r_ctr % probe.modulo
        response, duplicates = pair_counter(s.t_ns, s_ctr, r.t_ns, r_ctr, probe.window)
        return Pairing(s.t_ns, response, duplicates)


def run_probe(probe: Probe, buses: Mapping[str, Frames], db: Database,
              datagrams: Mapping[str, Sequence[Datagram]] | None = None) -> Pairing:
    """Evaluate one probe on the recorded frames of the rig's buses (and datagrams of its
    networks), with its pairing."""
    return registry.PROBES.implementation(probe.pair)(datagrams).pair(probe, buses, db)


def run_chain(c: Chain, pairings: Mapping[str, Pairing]) -> ChainPairing:
    result = chain([pairings[name] for name in c.probes])
    return ChainPairing(dict(zip(c.probes, result.hops.values())), result.total_ns, result.missed,
                        result.stimulus_ns)


def datagram_column(end: ProbeEnd, datagrams: Mapping[str, Sequence[Datagram]]) -> Column:
    """The datagrams to ``end.port`` on network ``end.bus`` (injected or the stack's) with the
    counter they carry: the field at ``offset`` (``size`` bytes, ``order``), the RTP sequence
    number or timestamp, or for next pairing none (0). Datagrams too short for it are left out."""
    if end.bus not in datagrams:
        raise AnalysisError(f"network {end.bus!r} has no datagrams in the recording; it has: "
                            f"{', '.join(sorted(datagrams)) or 'no networks'}")
    order: Literal["big", "little"]
    if end.rtp is not None:
        (at, size), order = RTP_FIELDS[end.rtp], "big"
    elif end.offset is not None:
        at, size, order = end.offset, end.size, end.order
    else:
        at, size, order = 0, 0, "big"
    port = f":{end.port}"
    longest = max([at + size] + [c.end for c in end.where])
    t, v = [], []
    for d in datagrams[end.bus]:
        if d.dst.endswith(port) and len(d.data) >= longest and all(holds(c, d.data) for c in end.where):
            t.append(d.t_ns)
            v.append(int.from_bytes(d.data[at:at + size], order))
    return Column(np.asarray(t, np.int64), np.asarray(v, np.uint64).astype(np.int64))


_COMPARE = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater,
            ">=": np.greater_equal}


def holds(cond: FieldMatch, payload: bytes) -> bool:
    """Whether ``payload`` (at least ``cond.end`` bytes) meets ``cond``: its field, or any repeat of it."""
    starts = np.array([cond.offset])
    for stride, count in cond.repeat:
        starts = (starts[:, None] + stride * np.arange(count)).ravel()
    raw = np.frombuffer(payload, np.uint8)[starts[:, None] + np.arange(cond.size)].astype(np.uint64)
    weights = np.uint64(1) << (np.uint64(8) * np.arange(cond.size, dtype=np.uint64))
    values = raw @ (weights if cond.order == "little" else weights[::-1])
    return bool(_COMPARE[cond.op](values, np.uint64(cond.value)).any())


def probe_frames(end: ProbeEnd, buses: Mapping[str, Frames], db: Database) -> Frames:
    if end.id is not None:
        return frames_with_id(buses, end.bus, end.id)
    assert end.message is not None  # checked with the suite: a CAN end has 'id' or 'message'
    can_id = db.message(end.message).frame_id
    return frames_with_id(buses, end.bus, can_id)


def field_column(end: ProbeEnd, frames: Frames, db: Database) -> Column:
    """The counter or edge value a probe end reads: a payload byte or a DBC signal."""
    if end.byte is not None:
        return byte_column(frames, end.byte)
    if end.signal is None:
        raise AnalysisError(f"bus {end.bus!r}: expected 'signal' or 'byte' to read a value from")
    message = end.message if end.message is not None else end.id
    assert message is not None  # checked with the suite: a CAN end has 'id' or 'message'
    msg, sig = db.signal(message, end.signal)
    return signal_column(frames, sig, raw=False, message=msg)
