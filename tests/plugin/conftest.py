"""The example plugin (tests/plugin/hil-example-plugin), built and installed by the test run into
a temporary folder — never into the venv — and put on ``PYTHONPATH`` for the ``hil`` it runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE = Path(__file__).resolve().parent / "hil-example-plugin"


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory) -> Path:
    """The folder the plugin is installed in (a copy is built: the build writes next to its source)."""
    tmp = tmp_path_factory.mktemp("plugin")
    shutil.copytree(SOURCE, tmp / "src", ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "--no-cache-dir", "--target", str(tmp / "site"), str(tmp / "src")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return tmp / "site"


def hil(plugin_site: Path, tmp: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``hil ARGS`` with the plugin installed, its lock and history folders in ``tmp``."""
    env = {k: v for k, v in os.environ.items() if k not in ("HIL_RIG", "HIL_HISTORY", "PYTHONPATH")}
    env.update(NO_COLOR="1", COLUMNS="200", PYTHONPATH=str(plugin_site), HIL_LOCK_DIR=str(tmp / "locks"),
               HIL_HISTORY=str(tmp / "history.sqlite"))
    return subprocess.run([sys.executable, "-m", "hil", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
