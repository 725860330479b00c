"""AdapterClock against synthetic adapters: drift, coarse and wrapping timestamps, transport delay
that batches and sometimes stalls — ten simulated minutes fed in well under a second."""

from __future__ import annotations

import random

import pytest

from hil.clock import AdapterClock

FLOOR_NS = 200_000  # the least transport delay (USB frame + driver): mapped times are late by it
EPOCH_NS = 1_700_000_000 * 10**9  # the adapter's clock starts far from the run clock


def adapter(ppm: float, resolution_ns: int, period_ns: int | None, seconds: float, every_ns: int = 10_000_000,
            seed: int = 1, gap: tuple[float, float] | None = None):
    """(true run-clock time, adapter timestamp in s, arrival ns) per frame: the adapter's oscillator
    is off by ``ppm``, stamps in ticks of ``resolution_ns`` that wrap every ``period_ns``; frames
    arrive after the floor, a batching delay up to 1 ms and, one in a hundred, a 30 ms stall."""
    rnd = random.Random(seed)
    t0 = 5_000_000_000
    t = t0
    while t < t0 + seconds * 1e9:
        if gap is None or not gap[0] * 1e9 <= t - t0 < gap[1] * 1e9:
            ticks = int((EPOCH_NS + (t - t0) * (1 + ppm * 1e-6)) // resolution_ns) * resolution_ns
            if period_ns:
                ticks %= period_ns
            delay = FLOOR_NS + rnd.randrange(1_000_000) + (30_000_000 if rnd.random() < 0.01 else 0)
            yield t, ticks / 1e9, t + delay
        t += every_ns


@pytest.mark.parametrize("ppm", [100, -100])
@pytest.mark.parametrize("resolution_ns,period_ns", [(1_000_000, 60_000_000_000), (1_000, None)],
                         ids=["slcan-Z1-ms-wrapping", "socketcand-us"])
def test_ten_minutes_of_100_ppm_drift_stay_within_1_ms(ppm, resolution_ns, period_ns):
    """Within 1 ms of the run clock with µs timestamps; with SLCAN's 1 ms ticks, within one tick of
    the run clock plus the transport floor (no clock can see inside a tick)."""
    clock = AdapterClock(resolution_s=resolution_ns / 1e9, period_s=period_ns and period_ns / 1e9)
    worst = 0
    for t, stamp, arrived in adapter(ppm, resolution_ns, period_ns, 600):
        worst = max(worst, abs(clock.to_run_clock(stamp, arrived) - t - FLOOR_NS))
    assert worst <= max(1_000_000 - FLOOR_NS, resolution_ns), f"a mapped time was {worst / 1e6:.3f} ms off"
    assert clock.drift_ppm == pytest.approx(-ppm, abs=2)  # the run clock runs slow against a fast adapter
    summary = clock.summary()
    assert summary["fitted"] and summary["frames"] == 60_000 and "lower-envelope" in summary["method"]
    assert worst <= summary["error_bound_ns"] + resolution_ns // 2 <= resolution_ns * 2 + 300_000


def test_a_silence_longer_than_the_wrap_period_loses_no_lap():
    clock = AdapterClock(resolution_s=1e-3, period_s=60.0)
    worst = max(abs(clock.to_run_clock(stamp, arrived) - t)
                for t, stamp, arrived in adapter(50, 1_000_000, 60_000_000_000, 300, gap=(100, 230)))
    assert worst <= 2_000_000  # a lost lap would be 60 s


def test_the_running_minimum_alone_would_have_drifted_off():
    """Why the fit exists: at −100 ppm the least delay seen first stays the offset, and ten minutes
    later the mapping is 60 ms early; the fitted clock is not."""
    frames = list(adapter(-100, 1_000, None, 600))
    lowest = min(arrived - round(stamp * 1e9) for _, stamp, arrived in frames[:200])
    t, stamp, _ = frames[-1]
    assert abs(round(stamp * 1e9) + lowest - t) > 50_000_000
    clock = AdapterClock()
    assert all(abs(clock.to_run_clock(s, a) - t) <= 1_000_000 for t, s, a in frames)


def test_the_bound_before_a_fit_allows_for_any_drift():
    clock = AdapterClock(resolution_s=1e-3)
    for _t, stamp, arrived in adapter(0, 1_000_000, None, 0.5):
        clock.to_run_clock(stamp, arrived)
    assert not clock.summary()["fitted"]
    assert clock.error_bound_ns() >= 500_000 + 480_000  # half a tick + 1000 ppm over the half second


def test_delays_the_fit_cannot_see_are_mapped_to_their_middle_and_held_by_the_bound():
    """Every frame arrives at least FLOOR_NS late: the envelope takes that floor for offset, so
    mapped times are late by all of it, beyond a bound that cannot see it. Told the least round
    trip (which no one-way trip exceeds), the clock maps to the middle and its bound holds the rest."""
    frames = list(adapter(100, 1_000, None, 30))
    blind = AdapterClock()
    late = max(blind.to_run_clock(s, a) - t for t, s, a in frames[-500:])
    assert late > blind.error_bound_ns()  # the gap this closes
    told = AdapterClock(round_trip_s=2.5 * FLOOR_NS / 1e9, batch_s=1e-4)
    worst = max(abs(told.to_run_clock(s, a) - t) for t, s, a in frames[-500:])
    assert worst <= told.error_bound_ns()
    assert told.error_bound_ns() >= (2.5 * FLOOR_NS + 100_000) / 2 and "unseen delays 0–600 µs" in told.method
