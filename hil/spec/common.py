"""Building blocks shared by the rig, suite and stack models: the strict base model, names, text,
argv strings, versions, durations, numbers, frame identifiers and the files a spec names.

Every bound that keeps a spec from asking for unbounded work (a duration of 10¹² s, a NaN limit, a
name that would become a path) is a field rule here or in the model, so it is reported with every
other field problem at its ``file:line:col``; docs/specs.md lists them.
"""

from __future__ import annotations

import math
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer
from pydantic import ValidationInfo, WithJsonSchema

from hil.files import MiB
from hil.text import CONTROL, LINE_CONTROL

NAME_RE = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"


class Spec(BaseModel):
    """Base of every spec model: unknown keys are errors, models are immutable after loading, and a
    float is finite (``.inf``, ``.nan`` and ``1e400`` are errors, not values)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


Name = Annotated[
    str,
    Field(pattern=NAME_RE, description="a name: letter first, then letters, digits, _ . - (≤ 64)"),
]


def _without(pattern: re.Pattern, what: str) -> AfterValidator:
    def check(value: str) -> str:
        m = pattern.search(value)
        if m:
            raise ValueError(f"expected {what} without control characters, got {value[:40]!r} "
                             f"(character {m.start() + 1} is {m.group()!r})")
        return value
    return AfterValidator(check)


Text = Annotated[str, _without(CONTROL, "text")]
"""Free text (descriptions): tabs and newlines, but no control characters for a terminal to obey."""

Line = Annotated[str, _without(LINE_CONTROL, "a one-line value")]
"""A one-line value (a unit, a DBC name, a host, a port): no control characters at all."""


def _no_nul(value: str) -> str:
    if "\0" in value:
        raise ValueError(f"expected a string without NUL bytes (the OS cannot pass them on), got {value[:40]!r}")
    return value


Arg = Annotated[str, AfterValidator(_no_nul)]
"""A command-line argument or an environment value: anything but NUL."""

ENV_NAME_RE = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"


def _env_name(value: str) -> str:
    if not re.fullmatch(ENV_NAME_RE[1:-1], value):
        raise ValueError(f"expected an environment variable name (letter or _ first, then letters, digits, _; "
                         f"at most 128), got {value[:40]!r}")
    if value.startswith("HIL_"):
        raise ValueError(f"HIL_* variables are set by hil (HIL_BUSES, HIL_CONFIG, …), got {value!r}")
    return value


EnvName = Annotated[str, AfterValidator(_env_name), Field(description="POSIX name; HIL_* are hil's")]

VERSION_RE = r"^[A-Za-z0-9][A-Za-z0-9._+~-]{0,31}$"
Version = Annotated[str, Field(pattern=VERSION_RE, description="a version: letter or digit first, then letters, "
                                                               "digits, . _ + ~ - (≤ 32); it names files")]

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
MAX_DURATION_NS = 7 * 24 * _UNITS_NS["h"]  # a week: longer than any bench, far inside int64 ns


def parse_duration_ns(value: Any) -> int:
    """``"250ms"`` / ``"1.5 s"`` / ``30`` or ``"30"`` (seconds) → integer nanoseconds, from 0 to a week."""
    ns: int | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"expected a finite duration, got {value!r}")
        if value < 0:
            raise ValueError(f"expected a duration ≥ 0, got {value!r}")
        ns = round(value * 1_000_000_000) if value <= MAX_DURATION_NS else MAX_DURATION_NS + 1
    elif isinstance(value, str) and (m := _DURATION_RE.match(value)):
        ns = round(float(m.group(1)) * _UNITS_NS[m.group(2) or "s"])
    if ns is None:
        raise ValueError(f"expected a duration such as '250ms', '2s' or a number of seconds, got {value!r}")
    if ns > MAX_DURATION_NS:
        raise ValueError(f"expected a duration of at most {format_duration(MAX_DURATION_NS)} (a week), got {value!r}")
    return ns


def format_duration(ns: int) -> str:
    """Shortest exact unit for ``ns`` (the inverse of :func:`parse_duration_ns` for round values)."""
    for unit in ("h", "min", "s", "ms", "us"):
        if ns and ns % _UNITS_NS[unit] == 0:
            return f"{ns // _UNITS_NS[unit]}{unit}"
    return f"{ns}ns"


def _positive(ns: int) -> int:
    if ns <= 0:
        raise ValueError("expected a duration > 0, got 0")
    return ns


Duration = Annotated[
    int,
    BeforeValidator(parse_duration_ns),
    PlainSerializer(format_duration, return_type=str),
    Field(json_schema_extra={"type": ["string", "number"]}, description="duration: '250ms', '2s', or seconds"),
]
PositiveDuration = Annotated[Duration, AfterValidator(_positive)]
"""A duration that must be more than 0: a timeout, a pairing window, a period."""


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


def _json_value(value: Any) -> Any:
    """``config`` and ``options`` travel as JSON: a YAML date, a NaN or a non-string key cannot."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"expected string keys (the value travels as JSON), got the key {k!r}")
            _json_value(v)
    elif isinstance(value, list):
        for v in value:
            _json_value(v)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"expected finite numbers (the value travels as JSON), got {value!r}")
    elif not (value is None or isinstance(value, (str, int, float, bool))):
        raise ValueError(f"expected JSON values (strings, numbers, true/false, null, lists, mappings), "
                         f"got {type(value).__name__} {str(value)[:40]!r}")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_json_value)]


# -- the files a spec names ------------------------------------------------------------------------


@dataclass(frozen=True)
class FileKind:
    """What a spec path names and the largest such file hil reads; ``folder``: a folder is fine too
    (the code that reads it checks its files). Attached to a path field's type, so
    :func:`named_files` finds every named file without a list to keep in step with the models."""

    what: str
    limit: int
    folder: bool = False


SPEC_FILE = FileKind("spec file", 1 * MiB)
DBC_FILE = FileKind("DBC file", 8 * MiB)
STIMULUS_FILE = FileKind("stimulus file", 1024 * MiB)
SHIPPED_FILE = FileKind("shipped file", 1024 * MiB, folder=True)
FIRMWARE_IMAGE = FileKind("firmware image", 64 * MiB, folder=True)
KNOWN_HOSTS = FileKind("known_hosts file", 1 * MiB)
SSH_KEY = FileKind("SSH key", 64 * 1024)
KEY_MODULE = FileKind("key module", 1 * MiB)


def _spec_path(value: Any, info: ValidationInfo) -> Path:
    """Relative paths resolve against the folder of the spec file being loaded."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a file path (string), got {value!r}")
    if LINE_CONTROL.search(value):
        raise ValueError(f"expected a file path without control characters, got {value[:60]!r}")
    if len(value.encode()) > 4095:
        raise ValueError(f"expected a file path of at most 4095 bytes, got {len(value.encode())}")
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


def named_files(model: BaseModel, loc: tuple = ()) -> Iterator[tuple[tuple, Path, FileKind]]:
    """Every path in ``model`` whose field type carries a :class:`FileKind`: (location, path, kind)."""
    for name, field in type(model).model_fields.items():
        yield from _walk(getattr(model, name), field.rebuild_annotation(), (*loc, field.alias or name))


def _walk(value: Any, tp: Any, loc: tuple) -> Iterator[tuple[tuple, Path, FileKind]]:
    if isinstance(value, BaseModel):
        yield from named_files(value, loc)
    elif isinstance(value, Path):
        kind = _kind(tp)
        if kind is not None:
            yield loc, value, kind
    elif isinstance(value, (list, tuple, dict)):
        inner = _container_item(tp)
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            yield from _walk(item, inner, (*loc, key))


def _members(tp: Any) -> list[Any]:
    """``tp`` without Annotated and Optional wrappers, as the list of its union members."""
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(tp) if a is not type(None) for m in _members(a)]
    return [tp]


def _container_item(tp: Any) -> Any:
    for m in _members(tp):
        args = typing.get_args(m)
        if typing.get_origin(m) in (list, tuple) and args:
            return args[0]
        if typing.get_origin(m) is dict and len(args) == 2:
            return args[1]
    return None


def _kind(tp: Any) -> FileKind | None:
    if typing.get_origin(tp) is Annotated:
        found = [m for m in tp.__metadata__ if isinstance(m, FileKind)]
        if found:
            return found[-1]
        return _kind(typing.get_args(tp)[0])
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return next((k for a in typing.get_args(tp) if (k := _kind(a)) is not None), None)
    return None
