"""The injector's waker: never early, and it spins only the stretch its own sleeps showed necessary —
the p99 of how late they woke, narrowed when no sleep fits, and never more than its share of the
time."""

from __future__ import annotations

import threading
import time

import pytest

from hil.stimulus.realtime import (LEARN_EVERY, MAX_SPIN_NS, MIN_SPIN_NS, RECENT_SLEEPS, SPIN_SHARE, Waker,
                                  host_load, request_short_slice)

US = 1_000


def test_it_never_wakes_early_and_learns_a_stretch_within_its_bounds():
    waker = Waker()
    start = time.monotonic_ns() + 1_000 * US
    for k in range(200):
        deadline = start + k * 500 * US
        assert waker.wait(deadline) >= deadline
    assert MIN_SPIN_NS <= waker.spin_ns <= MAX_SPIN_NS
    summary = waker.summary()  # how many sleeps, how much spinning: that is the host's to say
    assert summary["sleeps"] >= 1 and 0 <= summary["spinning"] <= 1 and summary["overslept"] <= summary["sleeps"]
    assert summary["preempted"] >= 0


def test_the_stretch_follows_how_late_the_sleeps_wake():
    waker = Waker(spin_ns=200 * US)
    for _ in range(2 * LEARN_EVERY):
        waker._learn(30 * US)
    assert waker.spin_ns == 37_500  # p99 of 30 µs wake-ups, plus a quarter
    waker._learn(500 * US)  # overslept the stretch: counted ...
    for _ in range(LEARN_EVERY - 1):
        waker._learn(30 * US)
    assert (waker.spin_ns, waker.overslept) == (37_500, 1)  # ... but one hiccup in a hundred is not the p99
    for _ in range(RECENT_SLEEPS):
        waker._learn(1 * US)
    assert waker.spin_ns == MIN_SPIN_NS


def test_a_stretch_too_long_to_sleep_in_narrows_until_it_sleeps_again():
    waker = Waker(spin_ns=MAX_SPIN_NS)
    for _ in range(100):  # deadlines that leave no time to sleep in a 2 ms stretch
        deadline = time.monotonic_ns() + 100 * US
        assert waker.wait(deadline) >= deadline
    assert waker.spin_ns < MAX_SPIN_NS // 4 and waker.summary()["sleeps"] == 0


def test_a_burst_of_deadlines_leaves_the_stretch_as_it_was():
    waker = Waker(spin_ns=150 * US)
    start = time.monotonic_ns()
    for k in range(500):  # a camera frame's packets, 12 µs apart, and a loop behind them
        deadline = start + k * 12 * US
        assert waker.wait(deadline) >= deadline
    assert waker.spin_ns == 150 * US


def test_host_load_says_how_busy_the_host_is():
    load = host_load()
    assert load["cpus"] >= 1 and len(load["loadavg"]) == 3
    assert load["cpu_some_avg10"] is None or 0 <= load["cpu_some_avg10"] <= 100


def test_a_short_slice_is_granted_or_the_reason_is_said():
    said = []
    t = threading.Thread(target=lambda: said.append(request_short_slice(200_000)))  # this thread only
    t.start()
    t.join()
    assert said[0] == "200 µs" or said[0].startswith(("not honoured by this kernel", "refused: ", "not asked: "))


def test_spinning_is_held_to_its_share_of_the_time():
    waker = Waker(spin_ns=200 * US)
    for _ in range(LEARN_EVERY - 1):
        waker._learn(100 * US)  # wake-ups 100 µs late would ask for a 125 µs stretch ...
    waker._learned_at = time.monotonic_ns() - 1_000 * US
    waker.spun_ns = 1_000 * US  # ... but the last millisecond was all spinning
    waker._learn(100 * US)
    assert waker.spin_ns == pytest.approx(200 * US * SPIN_SHARE, rel=0.02)
