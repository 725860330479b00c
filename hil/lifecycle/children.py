"""The supervisor of every child process hil starts: argv and environment, start, watch, end.

* :func:`python_argv` runs a hil module as ``python -P -m MODULE``: ``-P`` keeps the current folder
  off the child's ``sys.path``, so a folder named ``hil`` there (the parent of a plain
  ``git clone``) cannot shadow the installed package.
* :func:`spawn` starts a child with two variables in its environment: ``HIL_SUPERVISOR``, the pid
  of the process that supervises it (hil's Python children watch it: :func:`watch_supervisor`),
  and ``HIL_TREE``, a token naming this child's tree, which everything the child starts inherits.
  With ``leash=True`` the child runs under :mod:`hil.lifecycle.leash` in a session of its own (a
  target's component); otherwise in a process group of its own (the simbus broker, the injector).
  Either way a terminal's Ctrl-C reaches only the controller, which decides: a child never sees it
  halfway through its start-up.
* :meth:`Child.stop` ends the child and its whole tree: SIGTERM (a leash forwards it to everything
  below it), the grace period, then SIGKILL to every process of the tree — found as descendants
  and by the ``HIL_TREE`` token wherever they were reparented (a ``setsid`` or double fork does not
  hide them; nor does a killed leash, whose orphans go to init) — until none is left.
* :func:`sweep_leftovers` ends the trees of a controller that died together with their leash
  (both killed at once); every new supervisor sweeps once.

The leash, not this process, is the child subreaper: this process runs other children too (a
test's sshd, a Dask nanny) whose orphans are not ours to adopt.
"""

from __future__ import annotations

import itertools
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hil.lifecycle import SUPERVISOR_ENV, TREE_ENV, cgroup, procfs

_KILL_POLL_S = 0.01
STUCK_S = 30.0  # a process that SIGKILL has not ended by then is stuck in the kernel

log = logging.getLogger(__name__)


def python_argv(module: str, *args: str) -> list[str]:
    """``python -P -m module args...`` with the interpreter running hil."""
    return [sys.executable, "-P", "-m", module, *args]


def exit_text(code: int) -> str:
    """``exited with code 3`` / ``was killed by SIGSEGV`` for a Popen-style return code."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class _Supervisor:
    """This process as the supervisor of its children: the children it runs and their trees' tokens."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.children: set[Child] = set()
        self.pid = 0  # set on first use; a forked copy of this process starts afresh
        self.me = ""
        self.seq = itertools.count(1)

    def ready(self) -> None:
        with self.lock:
            if self.pid == os.getpid():
                return
            self.pid = os.getpid()
            self.children = set()
            me = procfs.stat(self.pid)
            assert me is not None  # this process is alive
            self.me = f"{self.pid}.{me.start}"
        sweep_leftovers()

    def token(self) -> str:
        return f"{self.me}.{next(self.seq)}"


_supervisor = _Supervisor()


def spawn(argv: list[str], *, what: str, leash: bool = False, env: dict[str, str] | None = None,
          **popen: Any) -> Child:
    """Start ``argv`` as a supervised child (``popen``: what :class:`subprocess.Popen` takes:
    cwd, stdin, stdout, stderr); ``what`` names it in messages (``the injector``)."""
    _supervisor.ready()
    tree = _supervisor.token()
    env = {**(os.environ if env is None else env), SUPERVISOR_ENV: str(os.getpid()), TREE_ENV: tree}
    status = None
    if leash:
        status, status_w = os.pipe()
        argv = python_argv("hil.lifecycle.leash", str(os.getpid()), str(status_w), "--", *argv)
        popen.update(start_new_session=True, pass_fds=(status_w,))
    else:
        popen.update(process_group=0)
    try:
        proc = subprocess.Popen(argv, env=env, **popen)
    except BaseException:
        if status is not None:
            os.close(status)
        raise
    finally:
        if status is not None:
            os.close(status_w)
    child = Child(proc, what, tree, status)
    with _supervisor.lock:
        _supervisor.children.add(child)
    return child


def kill_all() -> None:
    """SIGKILL every child this process supervises, with its tree (the watchdog's last act: it
    does not wait for a lock a hung thread might hold)."""
    locked = _supervisor.lock.acquire(timeout=1.0)
    try:
        children = list(_supervisor.children)
    finally:
        if locked:
            _supervisor.lock.release()
    for child in children:
        child.stop(0)


class Child:
    """One supervised child: a :class:`subprocess.Popen` (``proc``) and the tree below it."""

    def __init__(self, proc: subprocess.Popen, what: str, tree: str, status_fd: int | None):
        self.proc, self.what, self.tree = proc, what, tree
        self.leashed = status_fd is not None
        self._status_fd = status_fd  # the read end of the leash's status pipe, until stop closes it
        self._status = b""
        self._terminated = False
        self._readers: list[threading.Thread] = []

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        """The child's return code once it ended (a leashed one's: the leash's), else None."""
        return self.proc.poll()

    def ended(self) -> str:
        """How it ended, for messages: ``exited with code 3``, ``was killed by SIGKILL``; for a
        leashed component whose leash was killed, that."""
        code = self.proc.poll()
        if code is None:
            return "is running"
        if not self.leashed:
            return exit_text(code)
        component = self.component_status()
        if component is None:
            return f"lost its leash (the supervising process {exit_text(code)}) and was stopped with it"
        return exit_text(component)

    def component_status(self) -> int | None:
        """A leashed component's return code as its leash reported it (None: the leash died first)."""
        value = self._reported("exited")
        return None if value is None else os.waitstatus_to_exitcode(int(value))

    def _reported(self, kind: str) -> str | None:
        """What the leash reported on its status pipe as ``kind VALUE`` (so far)."""
        if self._status_fd is not None:
            os.set_blocking(self._status_fd, False)
            try:
                while chunk := os.read(self._status_fd, 4096):
                    self._status += chunk
            except BlockingIOError:
                pass
        for line in self._status.decode().splitlines():
            key, _, value = line.partition(" ")
            if key == kind:
                return value
        return None

    def read_lines(self, handlers: dict[str, Callable[[str], None]], name: str, limit: int = -1) -> None:
        """Read the child's piped ``stdout`` / ``stderr`` line by line, each on a thread of its own
        (so neither pipe fills and blocks the child): every line, its line ending removed and
        decoded as UTF-8 (bad bytes replaced), at most ``limit`` bytes, goes to ``handlers[STREAM]``."""
        for stream, handle in handlers.items():
            pipe = getattr(self.proc, stream)

            def run(pipe: Any = pipe, handle: Callable[[str], None] = handle) -> None:
                with pipe:
                    for raw in iter(lambda: pipe.readline(limit), b""):
                        handle(raw.rstrip(b"\n").rstrip(b"\r").decode("utf-8", errors="replace"))

            thread = threading.Thread(target=run, name=f"{name}-{stream}", daemon=True)
            thread.start()
            self._readers.append(thread)

    def drain(self, timeout_s: float) -> None:
        """Wait (at most ``timeout_s`` per pipe) until :meth:`read_lines` has passed on all the
        child wrote: call it once the child ended, so its last lines are not lost."""
        for thread in self._readers:
            thread.join(timeout_s)

    def terminate(self) -> None:
        """Ask the child to end (SIGTERM; a leash forwards it to everything below it), once."""
        if not self._terminated and self.proc.poll() is None:
            self._terminated = True
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, grace_s: float) -> None:
        """End the child and its tree: SIGTERM (unless :meth:`terminate` sent it), up to ``grace_s``
        for it to end, then SIGKILL to whatever of the tree is left (at once when ``grace_s`` is 0).
        Safe to call again."""
        proc = self.proc
        if grace_s > 0 and proc.poll() is None:
            self.terminate()
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                pass
        self._end_tree()
        proc.wait()
        self.component_status()  # read before the pipe closes
        if self._status_fd is not None:
            os.close(self._status_fd)
            self._status_fd = None
        with _supervisor.lock:
            _supervisor.children.discard(self)

    def _end_tree(self) -> None:
        """SIGKILL the child and every process of its tree until none is left (a process stuck in
        the kernel cannot die: after ``STUCK_S`` it is named in the log and left)."""
        group = self._reported("cgroup")
        if group is not None:  # the leash normally removes it; not when it was killed
            cgroup.kill(Path(group))
        deadline = time.monotonic() + STUCK_S
        while True:
            procs = procfs.processes()
            # the child's pid names it (and its descendants) only while it is not reaped
            root = self.pid if self.proc.poll() is None else None
            live = [p for p in ([root, *procfs.descendants(root, procs)] if root else [])
                    if p in procs and not procs[p].zombie]
            live += [p for p in procfs.marked(TREE_ENV, self.tree) if p not in live]
            if not live:
                return
            if time.monotonic() > deadline:
                log.warning("%s: %d process(es) of its tree did not end after SIGKILL: %s", self.what, len(live),
                            "; ".join(f"{p} {procfs.cmdline(p)}" for p in live))
                return
            for pid in live:
                _kill_if(pid, lambda: pid == root or self._in_tree(pid, root))  # asked within the call
            time.sleep(_KILL_POLL_S)

    def _in_tree(self, pid: int, root: int | None) -> bool:
        if procfs.environ(pid).get(TREE_ENV) == self.tree:
            return True
        while root is not None and (s := procfs.stat(pid)) is not None and s.ppid > 1:
            if s.ppid == root:
                return True
            pid = s.ppid
        return False


def _kill_if(pid: int, belongs: Callable[[], bool]) -> bool:
    """SIGKILL ``pid`` if ``belongs()`` — asked with a pidfd of it held, so a pid reused between
    the question and the signal is never hit. True when it was signalled."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:  # gone (ProcessLookupError), or not ours to open
        return False
    try:
        if belongs():
            signal.pidfd_send_signal(fd, signal.SIGKILL)
            return True
    except ProcessLookupError:
        pass
    finally:
        os.close(fd)
    return False


def sweep_leftovers() -> None:
    """SIGKILL every process of a tree whose supervising controller is gone, and every cgroup whose
    leash is gone: a controller and a leash killed at once leave them behind."""
    for group in cgroup.leftovers():
        log.warning("ending %s: its leash is gone", group)
        cgroup.kill(group)
    for pid, tree in procfs.marked(TREE_ENV).items():
        owner, _, rest = tree.partition(".")
        start = rest.partition(".")[0]
        if not (owner.isdigit() and start.isdigit()) or procfs.alive(int(owner), int(start)):
            continue
        command = procfs.cmdline(pid)
        if _kill_if(pid, lambda: procfs.environ(pid).get(TREE_ENV) == tree):  # asked within the call
            log.warning("ended pid %d %r: left by hil controller pid %s, which is gone", pid, command, owner)


def watch_supervisor() -> None:
    """In a child hil started (not under a leash): exit at once when the supervising process
    ends, however it ends. A thread waits on its pidfd."""
    pid = int(os.environ.get(SUPERVISOR_ENV, "0") or 0)
    if pid <= 0:
        return
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(137)
    if os.getppid() != pid:  # it ended before we watched: whoever is our parent now is not it
        os._exit(137)

    def watch() -> None:
        select.select([fd], [], [])
        os._exit(137)

    threading.Thread(target=watch, name="hil-supervisor-watch", daemon=True).start()
