"""A busy host never fails the stack: with every CPU spinning (hog processes this test starts and
kills), the smoke suite on the emulated AEB rig ends in ``pass`` — or in ``error`` naming the
harness and the host's load, exit 3 — never in ``fail``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager

from tests.e2e.test_aeb import RIG, hil
from tests.outcomes import explain, pass_or_harness_error, require_harness


@contextmanager
def cpu_hogs(n: int):
    """``n`` processes that spin until they are killed."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield hogs
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait()


def test_cpu_hogs_give_pass_or_an_error_naming_the_harness_never_a_fail(tmp_path):
    with cpu_hogs(os.cpu_count() or 2) as hogs:
        r = hil("run", "benches/aeb-smoke.yaml", "--rig", RIG, "--out", str(tmp_path / "run"), "--no-history")
        assert all(h.poll() is None for h in hogs), "the hogs stopped spinning before the run ended"
    bench = json.loads((tmp_path / "run" / "results.json").read_text())["benches"][0]
    require_harness([bench])
    assert pass_or_harness_error(bench), explain(bench)
    if bench["verdict"] == "error":
        assert r.returncode == 3, r.stdout + r.stderr
        assert "(host load — inject start: CPU pressure" in bench["error"]
        assert "harness" in r.stdout.split("│ approach")[1]  # the verdict table's note says so
    else:
        assert r.returncode == 0, r.stdout + r.stderr
