"""The one rule every end-to-end expectation follows on a shared host: a bench passes, or it is an
``error`` because the harness broke its budget (a busy host) — never the stack's ``fail``.

hil can only tell a busy host from a slow stack where the emulated buses measure their harness
error; a recording without those figures (a simbus that does not measure yet) cannot hold to the
rule, and a test that needs it says so by skipping (:func:`require_harness`)."""

from __future__ import annotations

from typing import Any

import pytest


def pass_or_harness_error(bench: dict[str, Any]) -> bool:
    """True when ``bench`` (a results.json bench) passed, or was not judged because its harness
    broke its budget, with a message that names the harness."""
    if bench["verdict"] == "pass":
        return True
    return (bench["verdict"] == "error" and bench["error_kind"] == "HarnessError" and "harness" in bench["error"]
            and all(m["outcome"] == "unjudged" or m["source"] == "replay" for m in bench["measurements"]))


def explain(bench: dict[str, Any]) -> str:
    """Why a bench broke the rule, for an assertion message."""
    failed = [(m["name"], m["detail"]) for m in bench["measurements"] if m["outcome"] == "fail"]
    return f"{bench['name']}: {bench['verdict']} {bench.get('error_kind')}: {bench.get('error')} {failed}"


def require_harness(benches: list[dict[str, Any]]) -> None:
    """Skip the calling test when a bench's recording holds no harness figures for its buses."""
    unmeasured = [b["name"] for b in benches if b.get("harness") and not b["harness"].get("buses")]
    if unmeasured:
        pytest.skip(f"no harness figures in the recordings of {', '.join(unmeasured)}: the emulated buses do not "
                    "measure their harness here, so a busy host cannot be told from a slow stack")
