"""The supervisor of every child: what a stopped child leaves (nothing), how an end is named, and
what its environment carries."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from hil.lifecycle import SUPERVISOR_ENV, TREE_ENV, procfs
from hil.lifecycle.children import python_argv, spawn

# a child that starts a detached helper (own session) and a plain one, prints their pids, waits
FAMILY = ("import json, os, subprocess, sys, time; "
          "a = subprocess.Popen(['sleep', '600'], start_new_session=True); "
          "b = subprocess.Popen(['sleep', '600']); "
          "print(json.dumps([a.pid, b.pid]), flush=True); time.sleep(600)")


@pytest.mark.parametrize("leash", [False, True], ids=["plain", "leashed"])
def test_stop_ends_the_child_and_all_it_started(leash):
    child = spawn([sys.executable, "-c", FAMILY], what="the family", leash=leash, stdout=subprocess.PIPE)
    helpers = json.loads(child.proc.stdout.readline())
    assert all(procfs.alive(p) for p in helpers)
    child.stop(5.0)
    child.proc.stdout.close()
    assert not any(procfs.alive(p) for p in helpers)


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace():
    child = spawn([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                   "print('up', flush=True); time.sleep(600)"], what="the stubborn one", leash=True,
                  stdout=subprocess.PIPE)
    assert child.proc.stdout.readline() == b"up\n"
    started = time.monotonic()
    child.stop(0.3)
    child.proc.stdout.close()
    assert time.monotonic() - started >= 0.3
    assert child.ended() == "was killed by SIGKILL"


@pytest.mark.parametrize("script, ended", [
    ("import sys; sys.exit(3)", "exited with code 3"),
    ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", "was killed by SIGSEGV"),
])
def test_a_leashed_component_s_end_is_its_own(script, ended):
    child = spawn([sys.executable, "-c", script], what="c", leash=True)
    child.proc.wait(60)
    assert child.ended() == ended
    child.stop(0)


def test_a_killed_leash_is_named_as_such():
    child = spawn(["sleep", "600"], what="c", leash=True)
    time.sleep(0.5)  # the leash has started its component
    child.proc.send_signal(signal.SIGKILL)
    child.proc.wait(60)
    assert child.ended() == "lost its leash (the supervising process was killed by SIGKILL) and was stopped with it"
    child.stop(0)


def test_the_environment_names_the_supervisor_and_the_tree():
    child = spawn([sys.executable, "-c", f"import os; print(os.environ[{SUPERVISOR_ENV!r}], os.environ[{TREE_ENV!r}])"],
                  what="c", stdout=subprocess.PIPE)
    supervisor, tree = child.proc.stdout.read().decode().split()
    child.stop(5.0)
    child.proc.stdout.close()
    assert (supervisor, tree) == (str(__import__("os").getpid()), child.tree)
    assert python_argv("hil.x", "a")[1:] == ["-P", "-m", "hil.x", "a"]  # the current folder stays off sys.path
