"""``hil -v run … | head -2``: whoever reads hil's output goes away mid-run. rich's console raised
SystemExit(1) at the next line: the running bench vanished from results.json and the run exited 1
("a bench failed") without a word. The run goes on silently and ends as it would have."""

from __future__ import annotations

import json

from .procs import Hil, survivors


def test_a_run_whose_reader_went_away_ends_as_it_would_have(tmp_path):
    run = Hil(tmp_path, "-v", "run", "benches/aeb-smoke.yaml", "--rig", "rigs/sim-aeb.yaml", "--out",
              str(tmp_path / "run"), read_lines=2)
    code, out, err = run.finish()
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert [b["name"] for b in results["benches"]] == ["approach"]
    assert code == results["exit_code"], err
    assert results["benches"][0]["verdict"] in ("pass", "fail") or results["benches"][0]["error_kind"] == "HarnessError", \
        results["benches"][0]["error"]
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert survivors(run.token) == []
