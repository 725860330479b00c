"""The harness budget in a suite: a default per suite (``defaults.harness``, built-in when left
out), fields overridden per bench, durations checked at load time with file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.errors import SpecError
from hil.spec import load_suite

GOOD = Path(__file__).parent / "files" / "good" / "suite.yaml"


def suite(tmp_path: Path, defaults: str = "", bench: str = "") -> Path:
    root = str(Path(__file__).parents[2]) + "/"
    text = GOOD.read_text().replace("defaults:\n", f"defaults:\n{defaults}").replace(
        "    duration: 2s\n", f"    duration: 2s\n{bench}").replace("../../../../", root)
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


def test_the_built_in_budget_holds_without_a_word_in_the_suite(tmp_path):
    s = load_suite(suite(tmp_path)).model
    assert dict(s.harness_budget(s.benches[0])) == {"p50": None, "p99": 1_000_000, "max": 20_000_000}


def test_a_bench_overrides_only_the_fields_it_sets(tmp_path):
    s = load_suite(suite(tmp_path, defaults="  harness: {p99: 500us, max: 10ms}\n",
                         bench="    harness: {p50: 50us, max: 50ms}\n")).model
    assert dict(s.harness_budget(s.benches[0])) == {"p50": 50_000, "p99": 500_000, "max": 50_000_000}


@pytest.mark.parametrize("defaults, bench, where, message", [
    ("  harness: {p99: soon}\n", "", "4:18: defaults.harness.p99",
     "expected a duration such as '250ms', '2s' or a number of seconds, got 'soon'"),
    ("", "    harness: {p95: 1ms}\n", "9:15: benches[0].harness.p95", "unknown key 'p95'; did you mean 'p99'? "
                                                                  "expected one of: p50, p99, max"),
    ("", "    harness: {max: -1}\n", "9:20: benches[0].harness.max", "expected a duration ≥ 0, got -1"),
])
def test_a_bad_budget_is_refused_at_its_position(tmp_path, defaults, bench, where, message):
    path = suite(tmp_path, defaults, bench)
    with pytest.raises(SpecError) as exc:
        load_suite(path)
    assert f"{path}:{where}: {message}" in str(exc.value)
