"""What a process can do on this host to wake up on time — used by the injector, shown by
``hil doctor``.

* timer slack: Linux lets a sleep end up to 50 µs late to batch wake-ups; ``PR_SET_TIMERSLACK`` 1 ns
  turns that off for this thread.
* PM QoS: holding ``/dev/cpu_dma_latency`` open with a 0 µs request keeps CPUs out of deep idle
  states (needs root or a udev rule giving the group write access).
* a short time slice (Linux ≥ 6.12, EEVDF; any user may ask): a task with a short slice gets an
  earlier deadline, so it runs sooner when it wakes on a busy host — with no more CPU than before.
* the garbage collector, frozen and disabled, cannot pause a replay.
* :func:`wait_until` sleeps coarsely and spins a fixed last stretch to an absolute deadline;
  :class:`Waker` spins only the stretch its own sleeps have shown necessary (the injector's).
* :func:`host_load` says how busy the host is (recorded around every injection, so a bench whose
  harness broke its budget can show whether the host was overloaded).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import platform
import resource
import struct
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from hil.clock import PR_SET_TIMERSLACK

PR_GET_TIMERSLACK = 30
DMA_LATENCY = "/dev/cpu_dma_latency"
SLICE_NS = 100_000  # the shortest time slice Linux grants a normal task
SCHED_ATTR = struct.Struct("IIQiIQQQII")  # struct sched_attr (version 1): size, policy, flags, nice, priority,
#                                           runtime, deadline, period, util_min, util_max
SCHED_SETATTR = {"x86_64": (314, 315), "aarch64": (274, 275), "riscv64": (274, 275)}  # (setattr, getattr)
SPIN_NS = 200_000  # the last stretch before a deadline is spun, not slept (wait_until; Waker's start)
MIN_SPIN_NS, MAX_SPIN_NS = 20_000, 2_000_000  # the stretch a Waker spins stays within these
LEARN_EVERY = 32  # a Waker sets its stretch again after this many sleeps ...
RECENT_SLEEPS = 512  # ... from how late this many recent ones woke ...
SPIN_SHARE = 0.25  # ... and spends at most this share of the time spinning


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def timer_slack_ns() -> int | None:
    try:
        value = _libc().prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0)
    except (OSError, AttributeError):
        return None
    return value if value >= 0 else None


def set_timer_slack(ns: int = 1) -> int | None:
    """Set this thread's timer slack; returns the slack now in force (None if unknown)."""
    try:
        _libc().prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0)
    except (OSError, AttributeError):
        return None
    return timer_slack_ns()


@dataclass
class LatencyRequest:
    """A held ``/dev/cpu_dma_latency`` request (``fd`` None when not permitted: ``why`` says why)."""

    fd: int | None
    why: str

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def hold_cpu_dma_latency(us: int = 0) -> LatencyRequest:
    """Ask PM QoS for ``us`` µs CPU wake-up latency for as long as the request is held."""
    try:
        fd = os.open(DMA_LATENCY, os.O_WRONLY)
    except OSError as exc:
        return LatencyRequest(None, f"{DMA_LATENCY}: {exc.strerror}")
    try:
        os.write(fd, struct.pack("i", us))
    except OSError as exc:
        os.close(fd)
        return LatencyRequest(None, f"{DMA_LATENCY}: {exc.strerror}")
    return LatencyRequest(fd, f"held at {us} µs")


def request_short_slice(ns: int = SLICE_NS) -> str:
    """Ask for ``ns`` time slices for this thread (``sched_setattr``, SCHED_OTHER with a runtime:
    honoured by the EEVDF scheduler of Linux ≥ 6.12). On a busy host such a thread runs sooner when
    it wakes, at the same CPU share. Returns what came of it, for the replay's host figures."""
    calls = SCHED_SETATTR.get(platform.machine())
    if calls is None:
        return f"not asked: no sched_setattr number known for {platform.machine()}"
    libc = _libc()
    attr = ctypes.create_string_buffer(SCHED_ATTR.pack(SCHED_ATTR.size, os.SCHED_OTHER, 0, os.getpriority(
        os.PRIO_PROCESS, 0), 0, ns, 0, 0, 0, 0))
    if libc.syscall(calls[0], 0, attr, 0) != 0:
        return f"refused: {os.strerror(ctypes.get_errno())}"
    back = ctypes.create_string_buffer(SCHED_ATTR.size)
    if libc.syscall(calls[1], 0, back, SCHED_ATTR.size, 0) != 0 or SCHED_ATTR.unpack(back.raw)[5] != ns:
        return "not honoured by this kernel (Linux ≥ 6.12 gives normal tasks their own slice)"
    return f"{ns / 1000:g} µs"


def freeze_gc() -> None:
    """Move every live object out of the collector's view and stop automatic collection."""
    gc.collect()
    gc.freeze()
    gc.disable()


def thaw_gc() -> None:
    gc.unfreeze()
    gc.enable()


def wait_until(deadline_ns: int, spin_ns: int = SPIN_NS) -> int:
    """Sleep until ``spin_ns`` before ``deadline_ns`` (run clock), spin the rest; never returns
    early. Returns the run-clock time on return. The spin does not yield: on a busy host a yield
    can give the CPU away for a whole time slice; other threads get the GIL at the switch interval."""
    now = time.monotonic_ns()
    if deadline_ns - now > spin_ns:
        time.sleep((deadline_ns - now - spin_ns) / 1e9)
    while (now := time.monotonic_ns()) < deadline_ns:
        pass
    return now


def host_load() -> dict[str, Any]:
    """How busy the host is now: CPU pressure (PSI ``some avg10``: the percentage of the last 10 s
    in which some runnable task waited for a CPU; None without PSI), load averages and CPUs."""
    try:
        with open("/proc/pressure/cpu") as f:
            fields = dict(kv.split("=", 1) for kv in f.readline().split()[1:])
        pressure = float(fields["avg10"])
    except (OSError, ValueError, KeyError):
        pressure = None
    return {"cpu_some_avg10": pressure, "loadavg": list(os.getloadavg()), "cpus": os.cpu_count()}


class Waker:
    """Wakes at absolute run-clock deadlines, never early, spinning no longer than needed.

    It sleeps until ``spin_ns`` before each deadline and spins the rest. The stretch is learned
    from its own sleeps: how late they woke (p99 of the last :data:`RECENT_SLEEPS`, plus a quarter),
    between :data:`MIN_SPIN_NS` and :data:`MAX_SPIN_NS`, set again every :data:`LEARN_EVERY` sleeps;
    a deadline too close to sleep for narrows it by 1/64 (else a stretch as
    long as the gaps between deadlines would never be slept, so never learned again) — unless it is
    closer than the shortest stretch: a burst of deadlines µs apart (a camera frame's packets) or a
    loop behind its deadlines says nothing about how late sleeps wake, and narrowing on them left
    the first deadline after each burst to a 20 µs stretch that every sleep overslept. Spinning takes
    at most :data:`SPIN_SHARE` of the time: beyond it the stretch is cut in proportion. So a quiet
    host spins tens of µs per deadline and gets its CPU back between them (on 2 CPUs, the processes
    a replay feeds must run). On a busy host sleeps wake late because the CPU is taken, and spinning
    longer only spends the share the scheduler gives the replay when it wakes: measured at 8 kHz on
    a loaded 2-CPU host, stretches up to 2 ms made the tail worse (p99 12-58 ms) than spinning held
    to a few % (5-8 ms)."""

    def __init__(self, spin_ns: int = SPIN_NS):
        self.spin_ns = spin_ns
        self.spun_ns = 0  # time spent spinning
        self.overslept = 0  # sleeps that woke later than the stretch (their deadline may have passed)
        self._late: deque[int] = deque(maxlen=RECENT_SLEEPS)
        self._sleeps = 0
        self._began = self._learned_at = time.monotonic_ns()
        self._spun_then = 0
        self._cpu = _cpu_ns()
        self._preempted = _preempted()

    def wait(self, deadline_ns: int) -> int:
        """Return at ``deadline_ns`` (run clock) or just after; returns the run-clock time then."""
        now = time.monotonic_ns()
        target = deadline_ns - self.spin_ns
        if target > now:
            time.sleep((target - now) / 1e9)
            now = time.monotonic_ns()
            self._learn(now - target)
        elif self.spin_ns > MIN_SPIN_NS and deadline_ns - now > MIN_SPIN_NS:
            self.spin_ns -= self.spin_ns >> 6
        began = now
        while now < deadline_ns:
            now = time.monotonic_ns()
        self.spun_ns += now - began
        return now

    def _learn(self, late_ns: int) -> None:
        self._late.append(late_ns)
        self._sleeps += 1
        self.overslept += late_ns > self.spin_ns
        if self._sleeps % LEARN_EVERY == 0:
            recent = sorted(self._late)
            p99 = recent[(len(recent) - 1) * 99 // 100]
            stretch = p99 + p99 // 4
            now = time.monotonic_ns()
            share = (self.spun_ns - self._spun_then) / max(1, now - self._learned_at)
            if share > SPIN_SHARE:
                stretch = min(stretch, int(self.spin_ns * SPIN_SHARE / share))
            self._learned_at, self._spun_then = now, self.spun_ns
            self.spin_ns = max(MIN_SPIN_NS, min(MAX_SPIN_NS, stretch))

    def summary(self) -> dict[str, Any]:
        """How it went: the stretch it ended with, the share of the time spent spinning, the
        process's CPU share meanwhile, the sleeps that overslept their stretch, and how often the
        scheduler took the CPU from this thread while it could run (involuntary context switches:
        each one a stall of at least the time another task then ran)."""
        wall = max(1, time.monotonic_ns() - self._began)
        return {"spin_us": self.spin_ns / 1e3, "spinning": self.spun_ns / wall,
                "cpu": (_cpu_ns() - self._cpu) / wall, "sleeps": self._sleeps, "overslept": self.overslept,
                "preempted": _preempted() - self._preempted}


def _preempted() -> int:
    """This thread's involuntary context switches so far (the process's where threads are not told apart)."""
    return resource.getrusage(getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)).ru_nivcsw


def _cpu_ns() -> int:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return int((usage.ru_utime + usage.ru_stime) * 1e9)


def scheduler() -> str:
    policy = os.sched_getscheduler(0)
    names = {os.SCHED_OTHER: "SCHED_OTHER", os.SCHED_FIFO: "SCHED_FIFO", os.SCHED_RR: "SCHED_RR",
             getattr(os, "SCHED_BATCH", -1): "SCHED_BATCH", getattr(os, "SCHED_IDLE", -1): "SCHED_IDLE"}
    return names.get(policy, str(policy))


def timer_lateness_sample(seconds: float = 5.0, period_ns: int = 1_000_000, spin_ns: int = 0) -> list[int]:
    """Lateness (ns) of absolute-deadline wake-ups every ``period_ns`` for ``seconds``: with
    ``spin_ns`` 0 this is the bare sleep lateness of the host."""
    out = []
    start = time.monotonic_ns() + period_ns
    for k in range(int(seconds * 1e9 / period_ns)):
        deadline = start + k * period_ns
        out.append(wait_until(deadline, spin_ns) - deadline)
    return out
