"""A bench written as a pytest test (run by test_plugin.py with and without --hil-rig)."""

from pathlib import Path

HERE = Path(__file__).parent


def test_echo_latency(hil_bench, hil_deploy, hil_recording, hil_inject):
    plan = hil_bench(HERE / "suite.yaml", "echo-latency")
    hil_deploy(plan.stack)  # a stack (file or model) works too
    with hil_recording:
        replay = hil_inject(plan.bench.stimulus, plan.settle_ns)  # and so does a bare stimulus
    result = hil_recording.analyse(plan)
    assert replay.frames_sent == 20
    assert result.outcome == "pass", [m for m in result.measurements if m.outcome == "fail"]


def test_echo_with_the_benchs_config_and_faults(hil_bench, hil_deploy, hil_recording, hil_inject):
    plan = hil_bench(HERE / "faults.yaml", "echo-delayed")
    hil_deploy(plan)  # the stack with the bench's config: the echo answers on 0x201
    with hil_recording:
        hil_inject(plan)  # its stimulus, its settle time and its faults: 0x201 is delayed 50 ms
    result = hil_recording.analyse(plan)
    assert result.outcome == "pass", [m for m in result.measurements if m.outcome == "fail"]
