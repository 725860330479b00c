"""A bench whose harness budget cannot be kept (run by test_plugin.py): analyse raises HarnessError."""

from pathlib import Path

HERE = Path(__file__).parent


def test_echo_on_a_harness_held_to_one_nanosecond(hil_bench, hil_deploy, hil_recording, hil_inject):
    plan = hil_bench(HERE / "tight.yaml", "echo-tight")
    hil_deploy(plan)
    with hil_recording:
        hil_inject(plan)
    hil_recording.analyse(plan)
