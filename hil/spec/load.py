"""YAML → spec models, with every problem in a file reported at once as
``path:LINE:COL: field.path: message``.

The YAML is parsed with ruamel.yaml's round-trip loader, which keeps the line and column of every key
and value; pydantic's error locations are walked back through that tree to a position. Duplicate keys,
tabs, binary content, oversized files and alias bombs ("billion laughs") are refused before any model
sees the data.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar, merge_attrib
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, SequenceNode

from hil.errors import SpecError
from hil.files import FileRefused, read_bytes
from hil.spec.common import NAME_RE, SPEC_FILE, VERSION_RE
from hil.spec.registered import Registered
from hil.spec.rig import HOST_RE, USER_RE, Rig
from hil.spec.stack import Stack
from hil.spec.suite import Suite

MAX_BYTES = SPEC_FILE.limit
MAX_NODES = 100_000
MAX_DEPTH = 200
EXTENSION_PREFIX = "x-"  # top-level keys for the user's own use, such as anchors to merge (<<: *base)

M = TypeVar("M", bound=BaseModel)
Loc = tuple
# A part of a YAML tree as ruamel gives it: a CommentedMap, CommentedSeq or scalar (a composer
# node while aliases are counted). Any: what a file holds is arbitrary until it is validated.
YamlNode = Any


@dataclass(frozen=True)
class SpecFile(Generic[M]):
    """A loaded spec: the model, and the YAML tree it came from (for positions of later checks)."""

    path: Path
    model: M
    doc: YamlNode

    def error(self, problems: list[tuple[Loc, str]]) -> SpecError:
        return SpecError([format_problem(self.path, self.doc, loc, msg) for loc, msg in problems])


def load_rig(path: str | Path) -> SpecFile[Rig]:
    return load(path, Rig)


def load_suite(path: str | Path) -> SpecFile[Suite]:
    return load(path, Suite)


def load_stack(path: str | Path) -> SpecFile[Stack]:
    return load(path, Stack)


def load(path: str | Path, model: type[M]) -> SpecFile[M]:
    """Parse and validate one file; raise :class:`SpecError` listing every problem in it."""
    path = Path(path)
    doc = parse_yaml(path)
    if not isinstance(doc, CommentedMap):
        got = "an empty file" if doc is None else f"a {_yaml_kind(doc)}"
        raise SpecError(f"{path}:1:1: expected a mapping of {model.__name__.lower()} keys, got {got}")
    data = {k: v for k, v in doc.items() if not str(k).startswith(EXTENSION_PREFIX)}
    try:
        obj = model.model_validate(data, context={"base_dir": str(path.parent.resolve())})
    except ValidationError as exc:
        raise SpecError([_format_pydantic(path, doc, model, e) for e in exc.errors()]) from None
    spec = SpecFile(path, obj, doc)
    problems = obj.problems() if hasattr(obj, "problems") else []
    if problems:
        raise spec.error(problems)
    return spec


def parse_yaml(path: Path) -> YamlNode:
    """Read ``path`` as YAML safely: size, encoding, duplicate keys, tabs, alias bombs, depth."""
    try:
        raw = read_bytes(path, MAX_BYTES, "spec file")
    except FileRefused as exc:
        raise SpecError(f"{path}:1:1: {exc}") from None
    if b"\0" in raw:
        line = raw.count(b"\n", 0, raw.index(b"\0")) + 1
        raise SpecError(f"{path}:{line}:1: expected YAML text, got binary data (NUL byte)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(f"{path}:{line}:{col}: expected UTF-8 text, got byte {raw[exc.start]:#04x}") from None
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        doc = yaml.load(text)
    except MarkedYAMLError as exc:
        raise SpecError(_format_yaml_error(path, exc)) from None
    except YAMLError as exc:
        raise SpecError(_format_reader_error(path, text, exc)) from None
    except RecursionError:
        raise SpecError(f"{path}:1:1: nesting is deeper than {MAX_DEPTH} levels") from None
    except Exception as exc:  # ruamel fails inside its constructor on a mapping that merges itself
        raise SpecError(_format_constructor_failure(path, text, exc)) from None
    _check_size(path, doc)
    return doc


def _format_yaml_error(path: Path, exc: MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = (exc.problem or str(exc)).strip()
    if "found duplicate key" in problem or type(exc).__name__ == "DuplicateKeyError":
        key = problem.split('"')[1] if '"' in problem else ""
        first = exc.context_mark
        where = f" (first at line {first.line + 1})" if first else ""
        problem = f"duplicate key {key!r}{where}"
    elif "\\t" in problem or "tab" in problem:
        problem = "tab character: YAML indentation must use spaces"
    elif exc.context:
        problem = f"{exc.context.strip()}: {problem}"
    return f"{path}:{line}:{col}: invalid YAML: {problem}"


def _format_reader_error(path: Path, text: str, exc: YAMLError) -> str:
    """Errors without a mark (a control character): the position is an offset into the text."""
    pos = getattr(exc, "position", None)
    if pos is None:
        return f"{path}:1:1: invalid YAML: " + " ".join(str(exc).split())
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    char = getattr(exc, "character", None)
    what = f"control character {char:#04x}" if isinstance(char, int) else "unacceptable character"
    return f"{path}:{line}:{col}: invalid YAML: {what}; YAML text may not contain it"


def _format_constructor_failure(path: Path, text: str, exc: Exception) -> str:
    """The merge key (``<<``) that merges a mapping into itself, found in the composed node graph;
    otherwise what ruamel said."""
    yaml = YAML(typ="rt", pure=True)
    seen: set[int] = set()

    def walk(node: YamlNode, ancestors: tuple[int, ...]) -> YamlNode:
        if not isinstance(node, (MappingNode, SequenceNode)) or id(node) in seen:
            return None
        seen.add(id(node))
        pairs = node.value if isinstance(node, MappingNode) else [(None, v) for v in node.value]
        for key, value in pairs:
            if key is not None and key.tag == "tag:yaml.org,2002:merge":
                merged = value.value if isinstance(value, SequenceNode) else [value]
                if any(id(m) in (*ancestors, id(node)) for m in merged):
                    return key.start_mark
            found = walk(value, (*ancestors, id(node)))
            if found is not None:
                return found
        return None

    mark = walk(yaml.compose(text), ())
    if mark is None:
        return f"{path}:1:1: invalid YAML: the document cannot be built ({type(exc).__name__}: {exc})"
    return (f"{path}:{mark.line + 1}:{mark.column + 1}: invalid YAML: this merge key (<<) merges a mapping "
            "that contains it; a mapping cannot contain itself")


def _check_size(path: Path, doc: YamlNode) -> None:
    """Refuse documents whose aliases expand beyond MAX_NODES, or are recursive, or are too deep."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: YamlNode, depth: int) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise SpecError(f"{_pos(path, node)}: recursive alias: a node contains itself")
        if depth > MAX_DEPTH:
            raise SpecError(f"{_pos(path, node)}: nesting is deeper than {MAX_DEPTH} levels")
        active.add(key)
        children = node.values() if isinstance(node, dict) else node
        total = 1
        for child in children:
            total += size(child, depth + 1)
            if total > MAX_NODES:
                break
        active.discard(key)
        sizes[key] = total
        return total

    if size(doc, 0) > MAX_NODES:
        node = doc
        while True:  # descend to the smallest node that is still too large: the alias bomb
            children = node.values() if isinstance(node, dict) else node
            big = [c for c in children if isinstance(c, (dict, list)) and sizes.get(id(c), 0) > MAX_NODES]
            if not big:
                break
            node = big[0]
        raise SpecError(f"{_pos(path, node)}: aliases expand to more than {MAX_NODES} nodes; refused")


def _pos(path: Path, node: YamlNode) -> str:
    lc = getattr(node, "lc", None)
    if lc is None or lc.line is None:
        return f"{path}:1:1"
    return f"{path}:{lc.line + 1}:{lc.col + 1}"


def _yaml_kind(node: YamlNode) -> str:
    if isinstance(node, list):
        return "list"
    if isinstance(node, str):
        return "string"
    return type(node).__name__


# -- mapping locations to positions -------------------------------------------------------------


def locate(doc: YamlNode, loc: Loc, at_key: bool = False) -> tuple[int, int, str]:
    """Walk ``loc`` through the YAML tree; return (line, col, field.path) of the deepest node found.

    Parts of ``loc`` that are not in the document (pydantic's union tags) are skipped. ``at_key``
    points at the last key itself rather than its value. A key that came in through a merge key
    (``<<: *base``) is found where it is written, in the anchored mapping; the field path then says
    where it was merged (``buses.can2.bitrat (merged at line 8)``).
    """
    node = doc
    line, col = (doc.lc.line, doc.lc.col) if hasattr(doc, "lc") else (0, 0)
    parts: list[str] = []
    merged = ""
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, CommentedMap) and part in node:
            owner = _owner(node, part)
            if owner is not node and not merged:
                merged = f" (merged at line {node.lc.line + 1})"
            kline, kcol = owner.lc.key(part)
            vline, vcol = owner.lc.value(part)
            line, col = (kline, kcol) if at_key and last else (vline, vcol)
            if isinstance(node[part], (CommentedMap, CommentedSeq)) and not (at_key and last):
                line, col = kline, kcol
            parts.append(str(part))
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line, col = node.lc.item(part)
            parts.append(f"[{part}]")
            node = node[part]
        elif isinstance(node, CommentedMap) and part == "from_" and "from" in node:
            return locate(doc, (*loc[:i], "from", *loc[i + 1:]), at_key)
    field = ".".join(parts).replace(".[", "[")
    return line + 1, col + 1, (field or "(top)") + merged


def _owner(node: CommentedMap, key: Any) -> CommentedMap:
    """The mapping in which ``key`` of ``node`` is written: ``node`` itself, or the mapping a merge
    key brought it from (merges of merges followed; the first merged mapping wins, as in YAML)."""
    if node._unmerged_contains(key):
        return node
    merge = getattr(node, merge_attrib, None)
    for source in (merge.value if merge is not None else []):
        if isinstance(source, CommentedMap) and key in source:
            return _owner(source, key)
    return node


def format_problem(path: Path, doc: YamlNode, loc: Loc, msg: str, at_key: bool = False) -> str:
    line, col, field = locate(doc, loc, at_key)
    return f"{path}:{line}:{col}: {field}: {msg}"


def _format_pydantic(path: Path, doc: YamlNode, model: type[BaseModel], err: Mapping[str, Any]) -> str:
    loc, kind, ctx = tuple(err["loc"]), err["type"], err.get("ctx") or {}
    if kind == "extra_forbidden":
        allowed = _keys_at(model, loc[:-1], doc)
        key = loc[-1]
        hint = difflib.get_close_matches(str(key), allowed, n=1)
        msg = f"unknown key {key!r}; " + (f"did you mean {hint[0]!r}? " if hint else "")
        msg += f"expected one of: {', '.join(allowed)}" if allowed else "no keys expected here"
        return format_problem(path, doc, loc, msg, at_key=True)
    if kind == "missing":
        return format_problem(path, doc, loc[:-1], f"missing required key {loc[-1]!r}", at_key=True)
    if kind == "union_tag_invalid":
        msg = f"expected {ctx.get('discriminator', 'kind')} to be one of {ctx.get('expected_tags')}, got {ctx.get('tag')!r}"
        return format_problem(path, doc, (*loc, ctx.get("discriminator", "").strip("'")), msg)
    if kind == "plugin_unusable":  # a registry name claimed twice, or a plugin that cannot be loaded
        at = (*loc, ctx.get("discriminator", "").strip("'"))
        return format_problem(path, doc, at, ctx.get("reason", err["msg"]))
    if kind == "union_tag_not_found":
        disc = ctx.get("discriminator", "kind").strip("'")
        return format_problem(path, doc, loc, f"missing required key {disc!r}", at_key=False)
    return format_problem(path, doc, loc, error_message(err))


_EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "a whole number",
    "float_type": "a number", "float_parsing": "a number", "string_type": "a string",
    "bool_type": "true or false", "bool_parsing": "true or false", "list_type": "a list",
    "dict_type": "a mapping", "model_type": "a mapping", "tuple_type": "a list",
    "model_attributes_type": "a mapping", "finite_number": "a finite number",
}
_PATTERNS = {  # a pattern's rule in words, for "string_pattern_mismatch"
    NAME_RE: "a name (letter first, then letters, digits, _ . -; at most 64)",
    VERSION_RE: "a version (letter or digit first, then letters, digits, . _ + ~ -; at most 32; it names files)",
    HOST_RE: "a host name or IP address",
    USER_RE: "a login name (letter or _ first, then letters, digits, _ . -; at most 32)",
}
_COMPARE = {"greater_than": ">", "greater_than_equal": "≥", "less_than": "<", "less_than_equal": "≤"}
_CTX_KEY = {"greater_than": "gt", "greater_than_equal": "ge", "less_than": "lt", "less_than_equal": "le"}


def error_message(err: Mapping[str, Any]) -> str:
    """pydantic's message in the project's voice: what was expected, and what came."""
    kind, ctx, got = err["type"], err.get("ctx") or {}, _show(err.get("input"))
    if kind == "string_type" and isinstance(err.get("input"), (int, float)) and not isinstance(err.get("input"), bool):
        return f"expected a string, got the number {got} (quote it: YAML reads 1.10 unquoted as the number 1.1)"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {got}"
    if kind in _COMPARE:
        return f"expected a value {_COMPARE[kind]} {ctx[_CTX_KEY[kind]]}, got {got}"
    if kind == "too_short":
        return f"expected at least {ctx.get('min_length')} entr{'y' if ctx.get('min_length') == 1 else 'ies'}, got none" \
            if not ctx.get("actual_length") else f"expected at least {ctx.get('min_length')} entries, got {ctx.get('actual_length')}"
    if kind == "string_too_short":
        return f"expected a non-empty string, got {got}"
    if kind == "string_too_long":
        return f"expected at most {ctx.get('max_length')} characters, got {len(err.get('input') or '')}"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") in _PATTERNS:
        return f"expected {_PATTERNS[ctx['pattern']]}, got {got}"
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if msg.startswith("Input should be "):
        msg = "expected " + msg.removeprefix("Input should be ") + f", got {got}"
    return msg


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return f"a {_yaml_kind(value) if isinstance(value, list) else 'mapping'}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, TaggedScalar):  # a custom YAML tag: hil's specs use none
        return f"the tagged value {value.tag.value} {value.value!r}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _keys_at(model: Any, loc: Loc, doc: YamlNode) -> list[str]:
    """The keys the model accepts at ``loc`` (for 'unknown key' messages). A registry field's
    model is the one its value in ``doc`` names (:mod:`hil.spec.registered`)."""
    tp: Any = model
    node = doc
    for part in loc:
        tp = _step(_resolve(tp, node), part)
        if isinstance(node, dict) and part in node or isinstance(node, list) and isinstance(part, int):
            node = node[part]  # (a union's tag in ``loc`` is no key of the document: the node stays)
        if tp is None:
            return []
    tp = _resolve(tp, node)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [f.alias or name for name, f in tp.model_fields.items()]
    return []


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _resolve(tp: Any, node: YamlNode) -> Any:
    """``tp`` without Optional and Annotated; a registry field as the model its value ``node`` names."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = members[0] if len(members) == 1 else tp
    if typing.get_origin(tp) is typing.Annotated:
        marker = next((m for m in tp.__metadata__ if isinstance(m, Registered)), None)
        if marker is not None:
            return marker.model_for(node)
    return _unwrap(tp)


def _step(tp: Any, part: Any) -> Any:
    tp = _unwrap(tp)
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, f in tp.model_fields.items():
            if part in (name, f.alias):
                return f.annotation
        return None
    if origin in (typing.Union, types.UnionType):
        members = [_unwrap(a) for a in typing.get_args(tp) if a is not type(None)]
        for m in members:
            if isinstance(m, type) and issubclass(m, BaseModel):
                tag = next((f for f in ("kind", "via", "method") if f in m.model_fields), None)
                if tag and part in typing.get_args(m.model_fields[tag].annotation) or m.__name__ == part:
                    return m
        return _step(members[0], part) if len(members) == 1 else None
    if origin in (list, tuple):
        return typing.get_args(tp)[0]
    if origin is dict:
        return typing.get_args(tp)[1]
    return None
