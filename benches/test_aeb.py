"""The AEB approach bench written as a pytest test — the same bench as ``aeb-smoke.yaml``, plus a
check the YAML cannot express: no braking at all while the object is still far away.

    pytest --hil-rig rigs/sim-aeb.yaml benches/test_aeb.py --junitxml junit.xml

Without ``--hil-rig`` the test is skipped, saying so. Measurements land in the JUnit report as
properties ``hil.<measurement>`` (value), ``.limits`` and ``.outcome``.
"""

from pathlib import Path

import numpy as np

SUITE = Path(__file__).with_name("aeb-smoke.yaml")
FAR_M = 45.0  # 60 m ahead at 15 m/s: braking starts at TTC 2.5 s, 37.5 m


def test_approach_brakes_in_time(hil_bench, hil_deploy, hil_recording, hil_inject):
    plan = hil_bench(SUITE, "approach")
    hil_deploy(plan)  # the bench's stack, with its config
    with hil_recording:
        hil_inject(plan)  # its stimulus and faults, then its settle time
    result = hil_recording.analyse(plan)

    distance = result.signals["sensor:RadarObject.ObjectDistance"]
    pressure = result.signals["chassis:BrakeStatus.MeasuredPressure"]
    far_until = distance.t_ns[distance.value > FAR_M].max()
    early = pressure.value[pressure.t_ns < far_until]
    assert early.size and np.all(early <= 1.0), f"braked up to {early.max()} bar with the object over {FAR_M} m away"
    failed = {m.name: f"{m.value} {m.unit} ({m.limits}) {m.detail}" for m in result.measurements
              if m.outcome == "fail"}
    assert not failed, f"measurements out of limits: {failed}"
