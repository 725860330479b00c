"""Whole-setup validation: a rig, its suites, and the stacks those suites deploy, checked against
each other. Structural problems of every file are collected before anything is raised; references
between files are checked once each file is structurally valid.

References include the files a spec names: each must be a regular file (or, where a folder is
meant, a folder) within its kind's size limit, checked through :mod:`hil.files` without reading it
(:func:`file_problems`). What the spec layer can tell about them without running anything is
checked too: a stimulus file is not empty and its format is known and installed, a ``flash.key``
module is found and defines its function (found through the import machinery and compiled, never
executed), a rig's health suite is valid. What needs the drivers (DBC names, firmware images,
stimulus content) is checked above this layer (:mod:`hil.bench.plan`).
"""

from __future__ import annotations

import ast
import dataclasses
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.errors import HilError, SpecError, UsageError
from hil.files import FileRefused, open_regular, read_text
from hil.spec.common import KEY_MODULE, SPEC_FILE, STIMULUS_FILE, FileKind, named_files
from hil.spec.load import SpecFile, load_rig, load_stack, load_suite, parse_yaml
from hil.spec.rig import Rig, UdsFlash
from hil.spec.stack import Stack
from hil.spec.suite import Stimulus, Suite, format_unavailable, stimulus_format, suffix_formats

Problem = tuple[tuple, str]


@dataclass
class Checked:
    rig: SpecFile[Rig]
    suites: list[SpecFile[Suite]] = field(default_factory=list)
    stacks: dict[Path, SpecFile[Stack]] = field(default_factory=dict)
    health: SpecFile[Suite] | None = None  # the rig's health suite, which `hil run` may run first


def check_files(rig_path: str | Path, paths: Sequence[str | Path] = (), stacks: Mapping[str, str] | None = None
                ) -> Checked:
    """Load ``rig_path``, then every suite or stack in ``paths`` (a file with ``components`` is a
    stack), the stacks the suites name and the rig's health suite; raise one SpecError listing
    every problem. ``stacks`` (OLD → NEW) replaces stacks the suites in ``paths`` name
    (:func:`replace_stacks`)."""
    problems: list[str] = []
    rig = _load(load_rig, rig_path, problems)  # when broken, the other files are still read
    if rig is not None:
        problems += _references(rig, None)
    suite_paths = [Path(p) for p in paths if not is_stack_file(Path(p))]
    stack_paths = [Path(p) for p in paths if is_stack_file(Path(p))]
    health_path = rig.model.health if rig is not None else None
    if health_path is not None and (not _readable(health_path) or health_path in {p.resolve() for p in suite_paths}):
        health_path = None  # refused by file_problems, or checked as one of the suites
    suites: list[SpecFile[Suite]] = []
    health = None
    for path in suite_paths + ([health_path] if health_path is not None else []):
        suite = _load(load_suite, path, problems)
        if suite is None:
            continue
        if stacks and path != health_path:
            suite = replace_stacks(suite, stacks)
        problems += _references(suite, rig)
        stack_paths += [p for p in _stack_paths(suite.model) if _readable(p)]
        if path == health_path:
            health = suite
        else:
            suites.append(suite)
    loaded: dict[Path, SpecFile[Stack]] = {}
    for stack_path in dict.fromkeys(stack_paths):
        stack = _load(load_stack, stack_path, problems)
        if stack is not None:
            loaded[stack_path] = stack
            problems += _references(stack, rig)
    for suite in suites + ([health] if health is not None else []):
        problems += _config_problems(suite, loaded)
    if problems:
        raise SpecError(list(dict.fromkeys(problems)))  # a file named twice is reported once
    assert rig is not None  # a rig that did not load left its problems, raised above
    return Checked(rig, suites, loaded, health)


def _load(loader: Any, path: str | Path, problems: list[str]) -> SpecFile | None:
    try:
        return loader(path)
    except SpecError as exc:
        problems += exc.problems
        return None


def _references(spec: SpecFile, rig: SpecFile[Rig] | None) -> list[str]:
    """What ``spec`` names that does not hold: rig references, files, file formats, key modules."""
    model = spec.model
    found = model.problems_on(rig.model) if rig is not None and hasattr(model, "problems_on") else []
    found += file_problems(model)
    if isinstance(model, Suite):
        found += [(("benches", i, "stimulus", *loc), msg) for i, bench in enumerate(model.benches) if bench.stimulus
                  for loc, msg in stimulus_problems(bench.stimulus)]
    if isinstance(model, Rig):
        found += _key_problems(model)
    return spec.error(found).problems if found else []


def _config_problems(suite: SpecFile[Suite], stacks: dict[Path, SpecFile[Stack]]) -> list[str]:
    """A bench's ``config`` for a component its stack lacks would be dropped without a word."""
    found: list[Problem] = []
    for i, bench in enumerate(suite.model.benches):
        stack_path = bench.stack or suite.model.defaults.stack
        stack = stacks.get(stack_path) if stack_path is not None else None
        if stack is None:
            continue
        known = stack.model.components
        found += [(("benches", i, "config", name), f"stack {stack.model.name!r} has no component {name!r}; it has: "
                                                    f"{', '.join(known)}") for name in bench.config if name not in known]
    return suite.error(found).problems if found else []


def is_stack_file(path: Path) -> bool:
    """A spec file whose top level has ``components`` is a stack; anything else is read as a suite."""
    return "components" in _top_keys(path)


def is_rig_file(path: Path) -> bool:
    """A spec file whose top level has ``buses`` is a rig."""
    return "buses" in _top_keys(path)


def _top_keys(path: Path) -> set[str]:
    try:
        doc = parse_yaml(path)
    except SpecError:
        return set()  # let the loader that reads it report it
    return set(doc) if isinstance(doc, dict) else set()


def replace_stacks(suite: SpecFile[Suite], stacks: Mapping[str, str]) -> SpecFile[Suite]:
    """The suite deploying NEW wherever it names OLD (in ``defaults`` or a bench), for each OLD → NEW
    of ``stacks`` (``hil run --stack OLD=NEW``). Both are read as if written in the suite: relative
    to its folder. Refused with a UsageError: an OLD the suite does not name, a NEW that is no
    readable file. Problems in NEW itself are reported at its own lines, as for any stack."""
    base = suite.path.parent.resolve()
    named = _stack_paths(suite.model)
    swap: dict[Path, Path] = {}
    for old, new in stacks.items():
        old_path, new_path = (base / old).resolve(), (base / new).resolve()
        if old_path not in named:
            shown = ", ".join(sorted({str(p.relative_to(base)) if p.is_relative_to(base) else str(p) for p in named}))
            raise UsageError(f"--stack {old}={new}: suite {suite.model.name!r} ({suite.path}) deploys no stack {old} "
                             f"({old_path}); it deploys: {shown}")
        why = refusal(new_path, SPEC_FILE)
        if why is not None:
            raise UsageError(f"--stack {old}={new}: {why}")
        swap[old_path] = new_path
    def swapped(path: Path | None) -> Path | None:
        return swap.get(path, path) if path is not None else None

    model = suite.model
    defaults = model.defaults.model_copy(update={"stack": swapped(model.defaults.stack)})
    benches = [b.model_copy(update={"stack": swapped(b.stack)}) for b in model.benches]
    return dataclasses.replace(suite, model=model.model_copy(update={"defaults": defaults, "benches": benches}))


def _stack_paths(suite: Suite) -> list[Path]:
    return [p for p in (b.stack or suite.defaults.stack for b in suite.benches) if p is not None]


# -- the files a spec names ---------------------------------------------------------------------


def file_problems(model: Any) -> list[Problem]:
    """Every file ``model`` names that is missing, not a regular file (or folder, where one is
    meant) or larger than its kind allows; at the field that names it."""
    return [(loc, why) for loc, path, kind in named_files(model) if (why := refusal(path, kind))]


def refusal(path: Path, kind: FileKind) -> str | None:
    """Why ``path`` cannot be used as a ``kind`` (None: it can). Opened without blocking and never read."""
    if kind.folder and path.is_dir():
        return None
    try:
        with open_regular(path, kind.limit, kind.what):
            return None
    except FileRefused as exc:
        return str(exc)


def _readable(path: Path | None) -> bool:
    """A suite's stack or a rig's health suite that can be loaded (else file_problems said why)."""
    return path is not None and refusal(path, SPEC_FILE) is None


def stimulus_problems(stimulus: Stimulus) -> list[Problem]:
    """Stimulus files ``hil run`` could not play, as far as their name and size tell: empty, a
    format nobody can tell from the suffix, MF4 without asammdf installed (files that are missing
    or not regular are :func:`file_problems`')."""
    out: list[Problem] = []
    for j, src in enumerate(stimulus.sources):
        if refusal(src.file, STIMULUS_FILE) is not None:
            continue
        try:
            fmt = stimulus_format(src.file, src.format)
        except HilError as exc:  # a suffix two readers claim, or a reader plugin that cannot be loaded
            out.append((("sources", j, "file"), str(exc)))
            continue
        if src.file.stat().st_size == 0:
            out.append((("sources", j, "file"), f"stimulus file {src.file} is empty: it has no frames to play"))
        elif fmt is None:
            out.append((("sources", j, "file"), f"cannot tell the format of stimulus file {src.file} from its suffix "
                        f"{src.file.suffix!r}; expected one of {', '.join(sorted(suffix_formats()))} or an explicit 'format'"))
        elif format_unavailable(fmt):
            out.append((("sources", j, "file" if src.format == "auto" else "format"),
                        f"stimulus file {src.file}: {format_unavailable(fmt)}"))
    return out


# -- flash.key modules ----------------------------------------------------------------------------


def _key_problems(rig: Rig) -> list[Problem]:
    out: list[Problem] = []
    for name, target in rig.targets.items():
        flash = getattr(target, "flash", None)
        if isinstance(flash, UdsFlash) and flash.key_module() is not None:
            problem = key_module_problem(flash.key)
            if problem:
                out.append((("targets", name, "flash", "key"), problem))
    return out


def key_module_problem(key: str) -> str | None:
    """Why ``module:function`` cannot be the seed→key function, found without running the module:
    the module is looked up as ``import`` would (sys.meta_path, sys.path) but not executed, its
    source is read within :data:`KEY_MODULE`'s limit and compiled, and the function must be bound
    at its top level (a ``def``, an assignment or an import). Modules without Python source (built
    in, compiled extensions) are taken on trust."""
    module, _, function = key.partition(":")
    parts = module.split(".")
    spec, searched = None, None
    for i in range(len(parts)):
        name = ".".join(parts[:i + 1])
        if i and searched is None:
            return f"{'.'.join(parts[:i])!r} is a module, not a package: there is no {module!r}"
        spec = _find_spec(name, searched)
        if spec is None:
            return f"no module {name!r} can be imported (with this Python and its sys.path)"
        searched = spec.submodule_search_locations
    origin = spec.origin if spec is not None else None
    if not origin or not origin.endswith(".py"):
        return None
    try:
        tree = ast.parse(read_text(origin, KEY_MODULE.limit, KEY_MODULE.what), origin)
    except FileRefused as exc:
        return str(exc)
    except SyntaxError as exc:
        return f"module {module!r} ({origin}) does not compile: line {exc.lineno}: {exc.msg}"
    names = _top_level_names(tree)
    if function not in names and "*" not in names and "__getattr__" not in names:
        return f"module {module!r} ({origin}) has no function {function!r} at its top level"
    return None


def _find_spec(name: str, path: list[str] | None) -> Any:
    """``name``'s module spec from the finders ``import`` uses — which only look, never execute
    (importlib.util.find_spec would import the parent packages)."""
    if name in sys.modules and sys.modules[name] is not None:
        return sys.modules[name].__spec__
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        spec = find(name, path) if find is not None else None
        if spec is not None:
            return spec
    return None


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return names
