"""A bench written as a pytest test (run by test_plugin.py with and without --hil-rig)."""

from pathlib import Path

HERE = Path(__file__).parent


def test_echo_latency(hil_bench, hil_deploy, hil_recording, hil_inject):
    plan = hil_bench(HERE / "suite.yaml", "echo-latency")
    hil_deploy(plan.stack)
    with hil_recording:
        replay = hil_inject(plan.bench.stimulus, plan.settle_ns)
    result = hil_recording.analyse(plan)
    assert replay.frames_sent == 20
    assert result.outcome == "pass", [m for m in result.measurements if m.outcome == "fail"]
