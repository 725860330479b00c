"""hil's own HPC drivers pass the target contract plugin authors run (:mod:`hil.testing`)."""

from __future__ import annotations

import textwrap

import pytest

from hil.targets import create_target
from hil.testing import TargetCase, TargetContract

from .test_ssh import ssh_rig  # noqa: F401  (the fixture)

APP = textwrap.dedent("""\
    import time
    print("ready", flush=True)
    time.sleep(600)
""")


def case(sf, tmp_path) -> TargetCase:
    sf.file("app/main.py", APP)
    rig = sf.rig()
    stack = sf.stack({"app": {"files": ["app"], "argv": ["{python}", "app/main.py"],
                              "ready": {"console": "^ready$", "timeout": "60s"}}})
    spec = rig.targets["hpc"]
    return TargetCase(lambda on_console: create_target("hpc", spec, rig, None, tmp_path / "run", on_console),
                      sf.components(stack), "^ready$")


class TestLocalHpcTarget(TargetContract):
    @pytest.fixture
    def target_case(self, sf, tmp_path):
        return case(sf, tmp_path)


class TestSshHpcTarget(TargetContract):
    @pytest.fixture
    def target_case(self, ssh_rig, tmp_path):  # noqa: F811
        return case(ssh_rig, tmp_path)
