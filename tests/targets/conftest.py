"""Helpers for target tests: stacks and rigs written as real YAML files, and process-group checks."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from hil.spec import load_rig, load_stack
from hil.targets import components_for


def write_yaml(path: Path, doc: dict) -> Path:
    yaml = YAML()
    with open(path, "w") as f:
        yaml.dump(doc, f)
    return path


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``, from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(entry))
    return out


def wait_groups_gone(pgids, wait_s: float = 30.0) -> dict[int, list[int]]:
    """Wait (bounded, not a timing assertion) for the groups to empty; return what is left."""
    end = time.monotonic() + wait_s
    while True:
        left = {g: m for g in pgids if (m := group_members(g))}
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.05)


class StackFiles:
    """A stack folder with files, a stack YAML and a rig YAML with one emulated HPC ``hpc``."""

    def __init__(self, root: Path):
        self.root = root
        self.rig_doc = {"name": "testrig", "buses": {"chassis": {"kind": "can", "emulated": True}},
                        "power": {"sim-power": {"kind": "emulated"}},
                        "targets": {"hpc": {"kind": "hpc", "reach": {"via": "emulated"}, "power": "sim-power"}}}

    def file(self, rel: str, text: str, mode: int = 0o644) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
        return path

    def stack(self, components: dict, name: str = "demo", version: str = "1.0"):
        for comp in components.values():
            comp.setdefault("kind", "process")
            comp.setdefault("target", "hpc")
        path = write_yaml(self.root / "stack.yaml", {"name": name, "version": version, "components": components})
        return load_stack(path).model

    def rig(self):
        return load_rig(write_yaml(self.root / "rig.yaml", self.rig_doc)).model

    def components(self, stack, target: str = "hpc"):
        return components_for(stack, target)


@pytest.fixture
def sf(tmp_path: Path) -> StackFiles:
    (tmp_path / "stack").mkdir()
    return StackFiles(tmp_path / "stack")
