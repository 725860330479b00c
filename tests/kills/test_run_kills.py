"""``hil run`` killed at every moment of a bench — SIGINT (Ctrl-C, to the foreground group as a
terminal sends it), SIGTERM (a cancelled CI job), SIGHUP (the terminal went away) and SIGKILL (also
to the whole group, as a CI runner does when a job overruns) — leaves what it promises: nothing
running, the rig's lease free at once, a recording every MCAP reader reads (and ``hil analyze``
judges), results.json with the bench that was running as ``error`` naming the signal (nothing can
be written after SIGKILL), the documented exit code, and no traceback.

The strikes run side by side, four at a time, each in its own folders with its own lease
directory: each waits for its moment in the run's progress output, so a busy host moves the
moments, never the assertions.
"""

from __future__ import annotations

import json
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from mcap.reader import make_reader

from hil.bench.lease import Lease
from hil.recording import load

from .procs import Hil, find, marked, side_by_side, survivors

pytestmark = pytest.mark.timeout(1200)  # the module's strikes run in the first test's setup

RIG = "rigs/sim-aeb.yaml"
SUITE = "benches/aeb-smoke.yaml"
PHASES = ["bring-up", "deploy", "start", "ready", "record", "inject", "settle", "stop", "analyse"]

#: moment → (the progress line that starts it (a regular expression matched at its start), how long after it to strike, the phases the signal
#: may land in: a short phase can be over before the signal arrives on a busy host; None: the bench
#: was judged already, the reports are being written)
MOMENTS = {
    "bring-up": ("approach: bring-up", 0.0, PHASES[0:3]),
    "deploy": ("approach: deploy", 0.5, PHASES[1:4]),  # the brake MCU is being flashed over UDS
    "ready": ("approach: ready", 0.2, PHASES[3:6]),
    "inject": ("approach: inject", 1.5, PHASES[5:7]),
    "settle": ("approach: settle", 0.0, PHASES[6:9]),
    "analyse": ("approach: analyse", 0.1, PHASES[8:9]),
    "report": (r"(pass|marginal|fail|error) +approach ", 0.0, None),  # the bench's verdict line (a busy
    # host may make it an error naming the harness: the reports are written all the same)
}
RECORDING = ("inject", "settle", "analyse", "report")  # moments by which the recording has started
STOPS = {signal.SIGINT: "interrupted (Ctrl-C)", signal.SIGTERM: "stopped by SIGTERM",
         signal.SIGHUP: "stopped by SIGHUP"}
#: (moment, signal, to the whole group, how many times)
CASES = ([(m, signal.SIGTERM, False, 1) for m in MOMENTS] + [(m, signal.SIGKILL, False, 1) for m in MOMENTS]
         + [(m, signal.SIGINT, True, 1) for m in ("deploy", "inject", "analyse", "report")]
         + [("ready", signal.SIGHUP, False, 1), ("inject", signal.SIGKILL, True, 1),
            ("inject", signal.SIGINT, True, 2), ("settle", signal.SIGTERM, False, 2)])  # impatient: twice


@dataclass
class Strike:
    code: int
    out: str
    err: str
    left: list[str]  # processes of the run still there after it ended
    lease_free: bool
    run: Path
    stock: set[str] | None  # topics the stock MCAP reader read (None: no recording)
    complete: bool
    analyze: tuple[int, str] | None


def strike(tmp: Path, moment: str, sig: int, group: bool, times: int) -> Strike:
    line, delay, _ = MOMENTS[moment]
    run = Hil(tmp, "-v", "run", SUITE, "--rig", RIG, "--out", str(tmp / "run"))
    try:
        run.wait_for(lambda text: re.match(line, text) is not None, line)
        time.sleep(delay)
        for _ in range(times):  # a second one lands in the teardown the first started
            run.signal(sig, group=group)
            time.sleep(0.05)
    finally:
        code, out, err = run.finish()
    left = survivors(run.token)
    try:
        with Lease("sim-aeb", directory=tmp / "locks"):  # free at once, not after a timeout
            lease_free = True
    except Exception:  # noqa: BLE001 - reported by the test
        lease_free = False
    path = tmp / "run" / "approach" / "recording.mcap"
    stock, complete, analyze = None, False, None
    if path.exists():
        with open(path, "rb") as f:
            stock = {channel.topic for _, channel, _ in make_reader(f).iter_messages()}
        complete = load(path).complete
        judge = Hil(tmp, "analyze", str(path), "--suite", SUITE, "--bench", "approach", "--out", str(tmp / "again"))
        a_code, a_out, a_err = judge.finish()
        analyze = (a_code, a_out + a_err)
    return Strike(code, out, err, left, lease_free, tmp / "run", stock, complete, analyze)


@pytest.fixture(scope="module")
def struck(tmp_path_factory) -> dict[tuple[str, int, bool, int], Strike]:
    def one(case: tuple[str, int, bool, int]) -> Strike:
        return strike(tmp_path_factory.mktemp(ids(case)), *case)

    return side_by_side(CASES, one)


def check_common(s: Strike, moment: str) -> None:
    assert "Traceback" not in s.err and "Exception ignored" not in s.err, s.err
    assert s.left == [], s.out + s.err
    assert s.lease_free
    if moment in RECORDING:
        assert s.stock is not None
    if s.stock is not None:
        assert "/events" in s.stock  # the stock reader read the whole recording, phases included
        code, text = s.analyze
        assert code in (0, 1) or (code == 3 and "harness over budget" in text), text  # judged, never refused
        assert "Traceback" not in text
        if not s.complete:  # cut by SIGKILL: judged on what it holds, and said so
            assert "was not closed (its writer was killed?): it holds what was written up to " in text


def ids(case: tuple[str, int, bool, int]) -> str:
    moment, sig, group, times = case
    return f"{moment}-{signal.Signals(sig).name}{'-group' if group else ''}{'-twice' if times > 1 else ''}"


@pytest.mark.parametrize("case", [c for c in CASES if c[1] != signal.SIGKILL], ids=ids)
def test_a_stop_signal_records_the_running_bench_as_error(struck, case):
    moment, sig, _, _ = case
    s = struck[case]
    check_common(s, moment)
    results = json.loads((s.run / "results.json").read_text())
    bench = results["benches"][0]
    phases = MOMENTS[moment][2]
    if phases is None:  # the bench was over: its verdict stands, and the reports are whole
        assert s.code in (0, 1, 3, 128 + sig), s.out + s.err
        assert bench["verdict"] in ("pass", "fail") or bench["error_kind"] == "HarnessError", bench
        assert (s.run / "report.html").read_text().rstrip().endswith("</html>")
    else:
        assert s.code == 128 + sig, s.out + s.err
        assert (bench["verdict"], bench["phase"]) in {("error", p) for p in phases}, bench
        assert bench["error"] == f"{STOPS[sig]}; the rig was torn down"
        assert (results["verdict"], results["exit_code"]) == ("error", 3)
        assert s.err.splitlines()[-1] == ("error: interrupted" if sig == signal.SIGINT else f"error: {STOPS[sig]}")
        if case[3] > 1:  # the second signal was noted, and cut nothing short
            assert f"hil: {STOPS[sig]} again: still tearing down" in s.err


@pytest.mark.parametrize("case", [c for c in CASES if c[1] == signal.SIGKILL], ids=ids)
def test_sigkill_leaves_a_readable_recording_and_nothing_running(struck, case):
    moment, _, _, _ = case
    s = struck[case]
    assert s.code == -signal.SIGKILL
    check_common(s, moment)
    results = s.run / "results.json"
    if results.exists():  # written whole, or not at all
        assert json.loads(results.read_text())["benches"][0]["name"] == "approach"


def test_the_kill_helpers_find_what_a_run_starts(tmp_path):
    """The tests above are only as good as their search: a live run is found by its marker."""
    run = Hil(tmp_path, "-v", "run", SUITE, "--rig", RIG, "--out", str(tmp_path / "run"))
    try:
        run.wait_for(lambda text: text == "approach: inject", "inject")
        assert len(marked(run.token)) >= 6  # hil, broker, 2 leashes, the planner, the brake MCU
        assert find(run.token, "planner.py") and find(run.token, "hil.firmware")
        assert find(run.token, "planner.py", leash=True) != find(run.token, "planner.py")
    finally:
        run.signal(signal.SIGKILL)
        run.finish()
    assert survivors(run.token) == []
