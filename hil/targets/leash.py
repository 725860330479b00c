"""The leash: runs one component so that its whole process group dies with the controller.

``python -m hil.targets.leash CONTROLLER_PID -- ARGV...`` is what the local HPC target starts, in a
new session (so it leads the component's process group). It starts ARGV in that group and waits for
whichever comes first:

* the controller exits — for any reason, SIGKILL included (watched through a pidfd, which needs
  no cooperation from the controller) — then the whole group is SIGKILLed;
* the component exits — then what it left behind in the group is SIGKILLed and the leash exits
  with the component's status (dying by the same signal), so the controller sees the real status.

SIGTERM sent to the group reaches the component; the leash itself ignores it and keeps waiting, so
a graceful stop keeps the watch until the component is gone. It is a separate process rather than
``PR_SET_PDEATHSIG`` because that signal reaches only the direct child, not its process group, and
fires when the *thread* that started it ends.
"""

from __future__ import annotations

import os
import resource
import select
import signal
import sys


def _kill_group_but_me() -> None:
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) == me:
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, IndexError, ValueError):
            continue


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m hil.targets.leash CONTROLLER_PID -- ARGV...", file=sys.stderr)
        return 2
    controller, cmd = int(argv[0]), argv[2:]
    try:
        watch = os.pidfd_open(controller)
    except ProcessLookupError:
        return 137
    if os.getppid() != controller:  # the controller died before we could watch it
        return 137
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, lambda *_: None)  # handlers (unlike SIG_IGN) are reset by exec
    try:
        pid = os.posix_spawnp(cmd[0], cmd, os.environ)
    except OSError as exc:
        print(f"hil: cannot start {cmd[0]!r}: {exc.strerror}", file=sys.stderr)
        return 127 if isinstance(exc, FileNotFoundError) else 126
    child = os.pidfd_open(pid)
    while True:
        ready, _, _ = select.select([watch, child], [], [])
        if watch in ready:
            os.killpg(0, signal.SIGKILL)
        if child in ready:
            break
    _, status = os.waitpid(pid, 0)
    _kill_group_but_me()
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if sig not in (signal.SIGKILL, signal.SIGSTOP):  # those two have no handler to reset
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
