"""Building blocks shared by the rig, suite and stack models: the strict base model, names,
durations and frame identifiers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, ValidationInfo
from pydantic import WithJsonSchema

NAME_RE = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"


class Spec(BaseModel):
    """Base of every spec model: unknown keys are errors, models are immutable after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


Name = Annotated[
    str,
    Field(pattern=NAME_RE, description="a name: letter first, then letters, digits, _ . - (≤ 64)"),
]

_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "min": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ns|us|µs|ms|s|min|h)?\s*$")


def parse_duration_ns(value: Any) -> int:
    """``"250ms"`` / ``"1.5 s"`` / ``30`` or ``"30"`` (seconds) → integer nanoseconds, never negative."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as '250ms' or '2s', got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"expected a duration ≥ 0, got {value!r}")
        return int(round(value * 1_000_000_000))
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m:
            return int(round(float(m.group(1)) * _UNITS_NS[m.group(2) or "s"]))
    raise ValueError(
        f"expected a duration such as '250ms', '2s' or a number of seconds, got {value!r}"
    )


def format_duration(ns: int) -> str:
    """Shortest exact unit for ``ns`` (the inverse of :func:`parse_duration_ns` for round values)."""
    for unit in ("h", "min", "s", "ms", "us"):
        if ns and ns % _UNITS_NS[unit] == 0:
            return f"{ns // _UNITS_NS[unit]}{unit}"
    return f"{ns}ns"


Duration = Annotated[
    int,
    BeforeValidator(parse_duration_ns),
    PlainSerializer(format_duration, return_type=str),
    Field(json_schema_extra={"type": ["string", "number"]}, description="duration: '250ms', '2s', or seconds"),
]


def _parse_can_id(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected a CAN id such as 0x123, got {value!r}")
    if isinstance(value, str):
        try:
            value = int(value, 0)
        except ValueError:
            raise ValueError(f"expected a CAN id such as 0x123, got {value!r}") from None
    if isinstance(value, int):
        if not 0 <= value <= 0x1FFFFFFF:
            raise ValueError(f"expected a CAN id in 0..0x1FFFFFFF, got {value:#x}")
        return value
    raise ValueError(f"expected a CAN id such as 0x123, got {value!r}")


CanId = Annotated[
    int,
    BeforeValidator(_parse_can_id),
    Field(json_schema_extra={"type": ["integer", "string"]}, description="CAN identifier, e.g. 0x123"),
]


def _spec_path(value: Any, info: ValidationInfo) -> Path:
    """Relative paths resolve against the folder of the spec file being loaded."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a file path (string), got {value!r}")
    base = (info.context or {}).get("base_dir")
    path = Path(value)
    if base is not None and not path.is_absolute():
        path = (Path(base) / path).resolve()
    return path


SpecPath = Annotated[
    Path,
    BeforeValidator(_spec_path),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "description": "path, relative to this file's folder"}),
]
