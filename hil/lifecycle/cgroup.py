"""A cgroup (v2) of its own for each leashed component, where the host lets hil create one.

A process can leave its process group, its session and its parent, and scrub its environment —
not its cgroup. Where this process's own cgroup is writable (root on a plain host, a delegated
systemd scope such as ``systemd-run --user --scope -p Delegate=yes``, many CI containers) and the
kernel has ``cgroup.kill`` (Linux ≥ 5.14), the leash makes ``hil-LEASHPID-START`` below it and its
component is born inside, so everything the component starts is inside too; ending the tree is one
write to ``cgroup.kill``, atomic even against a process that forks as fast as it can. Elsewhere
nothing is said and nothing is missing but that: the leash's /proc walk and the ``HIL_TREE`` token
end the same trees, unless a process scrubs its environment after its leash died.
``HIL_CGROUP=0`` turns cgroups off.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from hil.lifecycle import procfs

PREFIX = "hil-"
EMPTY_S = 10.0  # how long a killed cgroup may take to empty (its processes are being torn down)


def base() -> Path | None:
    """This process's own cgroup v2 folder, when hil may create cgroups below it."""
    if os.environ.get("HIL_CGROUP", "1") == "0":
        return None
    try:
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
        own = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    mount = next((line.split()[4] for line in mounts if " - cgroup2 " in line), None)
    path = next((line[3:] for line in own if line.startswith("0::")), None)
    if mount is None or path is None:
        return None
    folder = Path(mount) / path.lstrip("/")
    return folder if os.access(folder, os.W_OK) else None


def create() -> Path | None:
    """A new cgroup for this process's component (None: not here)."""
    folder = base()
    if folder is None:
        return None
    me = procfs.stat(os.getpid())
    assert me is not None  # this process is alive
    cgroup = folder / f"{PREFIX}{me.pid}-{me.start}"
    try:
        cgroup.mkdir()
    except OSError:
        return None
    if not (cgroup / "cgroup.kill").exists():  # before Linux 5.14 (the root cgroup has none either)
        cgroup.rmdir()
        return None
    return cgroup


def available() -> bool:
    """Whether components get cgroups of their own on this host (tried: one is made and removed)."""
    cgroup = create()
    if cgroup is not None:
        cgroup.rmdir()
    return cgroup is not None


def join(cgroup: Path) -> None:
    """Move the calling process into ``cgroup`` (a forked child, before it runs the component)."""
    try:
        (cgroup / "cgroup.procs").write_text("0")
    except OSError:  # refused (a cgroup with domain controllers, say): the /proc walk still works
        pass


def kill(cgroup: Path) -> None:
    """SIGKILL every process in ``cgroup``, wait for it to empty, remove it."""
    try:
        (cgroup / "cgroup.kill").write_text("1")
    except FileNotFoundError:
        return
    except OSError:
        pass
    deadline = time.monotonic() + EMPTY_S
    while time.monotonic() < deadline:
        try:
            if "populated 0" in (cgroup / "cgroup.events").read_text():
                break
        except OSError:
            return
        time.sleep(0.005)
    try:
        cgroup.rmdir()
    except OSError:
        pass


def leftovers() -> list[Path]:
    """hil cgroups whose leash is gone (it and its controller were killed at once)."""
    folder = base()
    if folder is None:
        return []
    out = []
    for cgroup in folder.glob(f"{PREFIX}*"):
        pid, _, start = cgroup.name[len(PREFIX):].partition("-")
        if pid.isdigit() and start.isdigit() and not procfs.alive(int(pid), int(start)):
            out.append(cgroup)
    return out
