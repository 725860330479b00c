"""Child processes never import from the current folder: ``hil run`` started (the README's way,
the ``hil`` console script of an editable install) in the parent folder of a plain ``git clone`` —
a folder holding a folder named ``hil`` — failed every bench ("the injector process ended
unexpectedly"): ``python -m`` children put the current folder first on ``sys.path``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .procs import ROOT, Hil, survivors


def test_a_bench_runs_from_the_folder_above_a_clone(tmp_path):
    above = tmp_path / "src"
    above.mkdir()
    (above / "hil").symlink_to(ROOT)  # ~/src/hil: the clone, whose package is ~/src/hil/hil
    run = Hil(tmp_path, "run", str(ROOT / "benches" / "aeb-smoke.yaml"), "--rig", str(ROOT / "rigs" / "sim-aeb.yaml"),
              "--out", str(tmp_path / "run"), "--no-history", cwd=above,
              command=(str(Path(sys.executable).with_name("hil")),))
    code, out, err = run.finish()
    bench = json.loads((tmp_path / "run" / "results.json").read_text())["benches"][0]
    assert bench["verdict"] in ("pass", "fail") or bench["error_kind"] == "HarnessError", bench["error"]  # judged: every child started
    assert code in (0, 1) or (code == 3 and bench["error_kind"] == "HarnessError"), out + err
    assert "Traceback" not in err and "Exception ignored" not in err, err  # the injector's exit too
    assert survivors(run.token) == []

