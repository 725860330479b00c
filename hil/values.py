"""Value types every layer shares: a bench's verdict, a measurement's outcome, a console line.

They sit below the drivers, the recording and the reports, so none of those reaches another layer
for them. Verdicts and outcomes are ``str`` enums: they compare equal to their text and serialise
as it, so results.json, JUnit XML and the history keep exactly the words they always had.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Verdict(enum.StrEnum):
    """What became of one bench: ``error`` (exit 3) outranks ``fail`` (exit 1)."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    SKIPPED = "skipped"


class Outcome(enum.StrEnum):
    """One measurement against its limits; ``unjudged`` when the harness broke its budget."""

    PASS = "pass"
    MARGINAL = "marginal"
    FAIL = "fail"
    UNJUDGED = "unjudged"


@dataclass(frozen=True)
class ConsoleLine:
    """One line a target printed: run-clock time, component (or console bus) and the text."""

    t_ns: int
    source: str
    text: str
    stream: str = "stdout"
