"""The leash: runs one component so that everything it starts ends with it, or with its supervisor.

``python -P -m hil.lifecycle.leash SUPERVISOR_PID STATUS_FD -- ARGV...`` is how
:func:`hil.lifecycle.children.spawn` starts a target's component (a local HPC process, an emulated
MCU), in a session of its own. The leash

* is a child subreaper (``PR_SET_CHILD_SUBREAPER``): whatever the component starts stays below the
  leash even when it double-forks or calls ``setsid``, so the leash finds all of it in /proc;
  where the host lets it, the component is also born in a cgroup of its own
  (:mod:`hil.lifecycle.cgroup`), which nothing it starts can leave;
* starts ARGV with ``PR_SET_PDEATHSIG`` = SIGKILL: if the leash itself is killed, the component
  dies with it (what the component left behind is reparented to the supervisor, marked with
  ``HIL_TREE``, and ended there);
* waits for whichever comes first: the supervisor exits (watched through a pidfd; SIGKILL
  included) — then it kills everything below it and exits; or the component exits — then it
  reports the component's status on STATUS_FD (``exited WAITSTATUS``; its cgroup, if any, was
  reported there first: ``cgroup PATH``), kills what the component left behind and exits with the
  component's status (dying of the same signal);
* forwards SIGTERM to every process below it, so a graceful stop reaches even a daemon the
  component detached; SIGINT and SIGHUP are not the leash's business (its supervisor decides).

It is a process of its own rather than ``PR_SET_PDEATHSIG`` on the component alone because that
signal reaches only the direct child, and it fires when the *thread* that started it ends.
"""

from __future__ import annotations

import ctypes
import os
import resource
import select
import signal
import sys
from pathlib import Path

from hil.lifecycle import SUPERVISOR_ENV, cgroup, procfs

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
USAGE = "usage: python -m hil.lifecycle.leash SUPERVISOR_PID STATUS_FD -- ARGV..."


def prctl(option: int, value: int) -> bool:
    """``prctl(option, value)``; False when the kernel refused."""
    return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0


def signal_below(root: int, sig: int) -> int:
    """Send ``sig`` to every live process below ``root``; returns how many there were."""
    procs = procfs.processes()
    count = 0
    for pid in procfs.descendants(root, procs):
        if not procs[pid].zombie:
            try:
                os.kill(pid, sig)  # each is our descendant: its pid cannot be reused before we reap it,
                count += 1  # or before its own parent (also below us) does — a race we accept
            except ProcessLookupError:
                pass
    return count


def reap(keep: int | None = None) -> None:
    """Reap every ended child but ``keep`` (whose status the caller wants)."""
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None or info.si_pid == keep:
            return
        os.waitpid(info.si_pid, 0)


def end_all_below(group: Path | None) -> None:
    """SIGKILL everything below the leash — its cgroup at once, if it has one — until nothing is
    left (orphans come to us: we reap)."""
    if group is not None:
        cgroup.kill(group)
    me = os.getpid()
    while signal_below(me, signal.SIGKILL):
        try:
            os.waitid(os.P_ALL, 0, os.WEXITED)  # one ended at least; then look again
        except ChildProcessError:
            pass
        reap()
    reap()


def start(cmd: list[str], group: Path | None) -> int:
    """Fork and exec ``cmd`` (in cgroup ``group``) tied to this process's life; the child reports a
    failed exec itself."""
    me = os.getpid()
    os.environ[SUPERVISOR_ENV] = str(me)  # the component's supervisor is the leash
    pid = os.fork()  # the leash is single-threaded: fork is safe here
    if pid == 0:
        try:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != me:  # the leash died before the request took hold
                os._exit(137)
            if group is not None:
                cgroup.join(group)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            os.execvp(cmd[0], cmd)
        except OSError as exc:
            os.write(2, f"hil: cannot start {cmd[0]!r}: {exc.strerror}\n".encode())
            os._exit(127 if isinstance(exc, FileNotFoundError) else 126)
        except BaseException:
            os._exit(126)
    return pid


def report(status_fd: int, line: str) -> None:
    """One line for the supervisor on the status pipe."""
    try:
        os.write(status_fd, f"{line}\n".encode())
    except OSError:  # nobody reads it any more
        pass


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--" or not (argv[0].isdigit() and argv[1].isdigit()):
        print(USAGE, file=sys.stderr)
        return 2
    supervisor, status_fd, cmd = int(argv[0]), int(argv[1]), argv[3:]
    try:
        watch = os.pidfd_open(supervisor)
    except ProcessLookupError:
        return 137
    if os.getppid() != supervisor:  # the supervisor died before we could watch it
        return 137
    os.set_inheritable(status_fd, False)  # the supervisor's alone: the component must not hold it open
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    group = cgroup.create()
    if group is not None:
        report(status_fd, f"cgroup {group}")
    signal.signal(signal.SIGTERM, lambda *_: signal_below(os.getpid(), signal.SIGTERM))
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    pid = start(cmd, group)
    component = os.pidfd_open(pid)
    signal.signal(signal.SIGCHLD, lambda *_: reap(keep=pid))  # orphans that end below us
    while True:
        ready, _, _ = select.select([watch, component], [], [])
        if component in ready:
            break
        if watch in ready:  # the supervisor is gone: so is everything it supervised
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            end_all_below(group)
            return 137
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    _, status = os.waitpid(pid, 0)
    report(status_fd, f"exited {status}")
    end_all_below(group)
    if os.WIFSIGNALED(status):
        killed_by = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if killed_by not in (signal.SIGKILL, signal.SIGSTOP):  # those two have no handler to reset
            signal.signal(killed_by, signal.SIG_DFL)
        os.kill(os.getpid(), killed_by)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
