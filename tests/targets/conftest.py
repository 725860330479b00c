"""Helpers for target tests: stacks and rigs written as real YAML files, and process-group checks."""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import time
from dataclasses import dataclass
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

    def stack_file(self, components: dict, name: str = "demo", version: str = "1.0") -> Path:
        """stack.yaml with ``components`` (process components on ``hpc`` unless they say), unchecked."""
        for comp in components.values():
            comp.setdefault("kind", "process")
            comp.setdefault("target", "hpc")
        return write_yaml(self.root / "stack.yaml", {"name": name, "version": version, "components": components})

    def stack(self, components: dict, name: str = "demo", version: str = "1.0"):
        return load_stack(self.stack_file(components, name, version)).model

    def rig(self):
        return load_rig(write_yaml(self.root / "rig.yaml", self.rig_doc)).model

    def components(self, stack, target: str = "hpc"):
        return components_for(stack, target)


@pytest.fixture
def sf(tmp_path: Path) -> StackFiles:
    (tmp_path / "stack").mkdir()
    return StackFiles(tmp_path / "stack")


# -- a real OpenSSH server on 127.0.0.1 ----------------------------------------------------------

SSHD = Path("/usr/sbin/sshd")
SSHD_CONFIG = """\
ListenAddress 127.0.0.1
Port {port}
HostKey {dir}/host_key
PidFile {dir}/sshd.pid
AuthorizedKeysFile {dir}/authorized_keys
PermitRootLogin prohibit-password
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
Subsystem sftp internal-sftp
LogLevel ERROR
"""


@dataclass
class Sshd:
    port: int
    dir: Path
    known_hosts: Path
    identity: Path
    user: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory) -> Sshd:
    """sshd -D on a free 127.0.0.1 port, with its own host key and an authorized user key."""
    if not SSHD.exists():
        pytest.skip(f"{SSHD} is missing (install openssh-server); the SSH target needs a real sshd to test")
    d = tmp_path_factory.mktemp("sshd")
    host_pub = _keygen(d / "host_key")
    (d / "authorized_keys").write_text(_keygen(d / "id_user") + "\n")
    port = free_port()
    (d / "sshd_config").write_text(SSHD_CONFIG.format(port=port, dir=d))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    known = d / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {' '.join(host_pub.split()[:2])}\n")
    log = open(d / "sshd.log", "wb")
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(d / "sshd_config")], stdout=log, stderr=log)
    try:
        end = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (d / "sshd.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < end, "sshd did not listen"
                time.sleep(0.05)
        yield Sshd(port, d, known, d / "id_user", pwd.getpwuid(os.getuid()).pw_name)
    finally:
        proc.terminate()
        proc.wait()
        log.close()
