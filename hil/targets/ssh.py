"""The SSH HPC target: components run on a remote Linux host reached with asyncssh.

Deploy connects with key authentication, checks the host key against the rig's ``known_hosts``
(always; a missing file is an error, never a reason to skip the check), uploads the bundle with
SFTP into ``WORKDIR/RUN-ID/TARGET``, checks the upload's sha256, then on the remote host that every
folder is a real folder, every file a regular file and every link resolves completely inside its
component (``readlink -e``), and every file's sha256 (``sha256sum -c``), before anything starts. Each component runs under a
small ``sh`` launch script in its own session (``setsid``), its stdout/stderr streamed back line by
line. The SSH channel's stdin is the leash: when it closes — stop, or the controller dying with its
connection — the script sends SIGTERM to the component's process group and SIGKILL after the grace
period. Stop also removes the remote folder.

Nothing from the stack reaches the remote login shell: the launch scripts (environment and argv,
every word ``shlex.quote``-d, names checked by :mod:`hil.targets.hpc`) and the check scripts are
uploaded with SFTP or fed on stdin and read by ``sh``; the command lines the login shell sees are
fixed text and the quoted remote folder.

asyncssh is asynchronous; the target runs its own event loop in a thread and the life-cycle hooks
wait for it, so the target offers the same blocking protocol as every other driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import socket
import threading
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncssh

from hil import clock
from hil.errors import BundleError, DeployError
from hil.files import MiB, FileRefused, read_bytes, read_text
from hil.spec.common import format_duration
from hil.spec.rig import HpcTarget, Rig, SshReach
from hil.spec.stack import Component, ProcessComponent
from hil.targets import bundle as bundles
from hil.targets.base import Target
from hil.targets.hpc import check_argv, checked_bundle, component_env, crashed, expand_argv
from hil.targets.ready import Armed
from hil.values import ConsoleLine

if TYPE_CHECKING:
    from hil.buses import RigBuses

DEFAULT_GRACE_NS = 5_000_000_000
CONNECT_TIMEOUT_S = 30.0  # one attempt
CONNECT_RETRY_S = 1.0
_SLACK_S = 30.0  # beyond the grace period, for the remote side to report back
KEY_LIMIT = 1 * MiB
KNOWN_HOSTS_LIMIT = 16 * MiB

LAUNCH = """\
mkdir -p -- {cwd} && cd -- {cwd} || exit 126
{exports}exec 3<&0 0</dev/null
setsid -- {argv} 3<&- &
pid=$!
( while read -r _ <&3; do :; done
  kill -s TERM -- -$pid 2>/dev/null; sleep {grace}; kill -s KILL -- -$pid 2>/dev/null ) >/dev/null 2>&1 &
watch=$!
exec 3<&-
wait $pid 2>/dev/null; rc=$?
kill -s KILL -- -$pid 2>/dev/null
kill $watch 2>/dev/null
exit $rc
"""


class SshHpcTarget(Target):
    """Deploys and runs an HPC target's components over SSH."""

    def __init__(self, name: str, spec: HpcTarget, *, rig: Rig | None = None, buses: RigBuses | None = None,
                 run_dir: Path, on_console: Callable[[ConsoleLine], None] | None = None,
                 grace_ns: int = DEFAULT_GRACE_NS):
        super().__init__(name, on_console)
        if not isinstance(spec.reach, SshReach):
            raise DeployError(f"target {name!r}: the SSH driver needs 'reach: {{via: ssh}}'")
        self.spec = spec
        self.reach: SshReach = spec.reach
        self.rig = rig
        self.buses = buses
        self.run_dir = Path(run_dir)
        self.grace_ns = grace_ns
        run_id = f"{socket.gethostname()}-{os.getpid()}-{self.run_dir.name}"
        self.remote_dir = f"{self.reach.workdir.rstrip('/')}/{run_id}/{name}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: asyncssh.SSHClientConnection | None = None
        self._components: dict[str, ProcessComponent] = {}
        self._procs: dict[str, asyncssh.SSHClientProcess] = {}
        self._exits: dict[str, int] = {}
        self._pumps: dict[str, list[asyncio.Task]] = {}
        self._ready = Armed()

    @property
    def where(self) -> str:
        return f"{self.reach.user}@{self.reach.host}:{self.reach.port}"

    # -- life cycle hooks ----------------------------------------------------------------------

    def _deploy(self, components: Mapping[str, Component], bundle: Path | None = None) -> None:
        if self.spec.console is not None:
            self.capture_console(self.buses, self.spec.console)
        # the bundle, environment and argv are checked here, before anything is sent
        self._components, archive, manifest = checked_bundle(
            self.name, components, bundle, self.run_dir / "targets" / f"{self.name}.bundle.tar.gz")
        launch = {name: self._launch(name, comp) for name, comp in self._components.items()}
        self._run(self._upload_and_verify(archive, manifest, launch))

    def _start(self) -> None:
        self._ready = Armed(self._components, self.log, self.buses)
        self._run(self._start_all())

    def _wait_ready(self, timeout_ns: int | None) -> None:
        self._ready.wait(self.name, self.log, self._alive, timeout_ns)

    def _stop(self) -> None:
        self._ready.close()
        if self._loop is None:
            return
        try:
            self._run(self._stop_all(), timeout=self.grace_ns / 1e9 + 2 * _SLACK_S)
        finally:
            self._close_loop()

    # -- the event loop thread -----------------------------------------------------------------

    def _run(self, coro: Coroutine, timeout: float | None = None) -> Any:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            threading.Thread(target=self._loop.run_forever, name=f"ssh-{self.name}", daemon=True).start()
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _close_loop(self) -> None:
        loop, self._loop = self._loop, None
        assert loop is not None  # called by _stop, which returned early without one
        loop.call_soon_threadsafe(loop.stop)

    # -- remote steps --------------------------------------------------------------------------

    def _trust(self) -> tuple[asyncssh.SSHKnownHosts, dict]:
        """The rig's known_hosts and (``client_keys``) identity, each read as a bounded regular file."""
        r = self.reach
        try:
            known = asyncssh.import_known_hosts(read_text(r.known_hosts, KNOWN_HOSTS_LIMIT, "known_hosts file"))
        except FileRefused as exc:
            raise DeployError(f"target {self.name!r}: {exc}; hil never connects without checking the host key") \
                from None
        except (asyncssh.Error, ValueError) as exc:
            raise DeployError(f"target {self.name!r}: known_hosts file {r.known_hosts} cannot be read: {exc}") from None
        if r.identity is None:
            return known, {}
        cert = Path(f"{r.identity}-cert.pub")  # as ssh and asyncssh pick it up beside the key
        key: asyncssh.SSHKey | tuple[asyncssh.SSHKey, asyncssh.SSHCertificate]
        try:
            key = asyncssh.import_private_key(read_bytes(r.identity, KEY_LIMIT, "identity"))
            if cert.exists():
                key = (key, asyncssh.import_certificate(read_bytes(cert, KEY_LIMIT, "certificate")))
        except FileRefused as exc:
            raise DeployError(f"target {self.name!r}: {exc}") from None
        except (asyncssh.Error, ValueError) as exc:
            raise DeployError(f"target {self.name!r}: identity {r.identity} cannot be used: {exc}") from None
        return known, {"client_keys": [key]}

    async def _connect(self) -> asyncssh.SSHClientConnection:
        r = self.reach
        known, keys = self._trust()
        deadline = clock.now_ns() + r.connect_timeout
        try:
            while True:
                try:
                    return await asyncssh.connect(r.host, port=r.port, username=r.user, known_hosts=known,
                                                  connect_timeout=CONNECT_TIMEOUT_S, **keys)
                except OSError:  # refused or unreachable: the host may still be booting
                    if clock.now_ns() >= deadline:
                        raise
                    await asyncio.sleep(CONNECT_RETRY_S)
        except asyncssh.HostKeyNotVerifiable as exc:
            raise DeployError(f"target {self.name!r}: host key of {r.host}:{r.port} is not trusted by "
                              f"{r.known_hosts} ({exc.reason}); refusing to connect") from None
        except asyncssh.PermissionDenied:
            what = f"key {r.identity}" if r.identity else "the SSH agent's keys"
            raise DeployError(f"target {self.name!r}: {self.where} refused {what}") from None
        except (OSError, asyncssh.Error) as exc:
            raise DeployError(f"target {self.name!r}: cannot connect to {self.where} (tried for "
                              f"{format_duration(r.connect_timeout)}): {exc}") from None

    async def _remote(self, what: str, command: str, stdin: str | None = None,
                      error: type[DeployError] = DeployError) -> str:
        assert self._conn is not None  # remote steps run once deploy connected
        done = await self._conn.run(command, input=stdin, check=False)
        if done.exit_status != 0:
            out = (str(done.stdout or "") + str(done.stderr or "")).strip()
            raise error(f"target {self.name!r}: {what} failed on {self.reach.host} "
                        f"(exit {done.exit_status}):\n{out}")
        return str(done.stdout or "")

    async def _upload_and_verify(self, archive: Path, manifest: bundles.Manifest, launch: dict[str, str]) -> None:
        if self._conn is None:
            self._conn = await self._connect()
        d = shlex.quote(self.remote_dir)
        await self._remote("creating the remote folder",
                           f"umask 077 && rm -rf -- {d} && mkdir -p -- {d}/bundle {d}/launch")
        async with self._conn.start_sftp_client() as sftp:
            await sftp.put(str(archive), f"{self.remote_dir}/bundle.tar.gz")
            for name, script in launch.items():
                async with sftp.open(self._launch_path(name), "w") as f:
                    await f.write(script)
        await self._remote("checking the uploaded bundle", f"cd {d} && sha256sum -c --strict -",
                           f"{bundles.file_sha256(archive)}  bundle.tar.gz\n", BundleError)
        await self._remote("unpacking the bundle",
                           f"tar -xzf {d}/bundle.tar.gz -C {d}/bundle --no-same-owner --no-same-permissions")
        what = f"bundle {manifest.name} {manifest.version}"
        await self._remote(f"file and link verification of {what}", f"cd {d}/bundle && sh -s",
                           bundles.remote_checks(manifest, self._components), BundleError)
        if sums := bundles.sha256sums(manifest, self._components):
            await self._remote(f"checksum verification of {what}",
                               f"cd {d}/bundle && sha256sum -c --strict --quiet -", sums, BundleError)

    async def _start_all(self) -> None:
        self._exits = {}
        assert self._conn is not None  # started after deploy connected
        for name in self._components:
            self._procs[name] = proc = await self._conn.create_process(
                f"exec sh -- {shlex.quote(self._launch_path(name))}", encoding="utf-8", errors="replace")
            self._pumps[name] = [asyncio.ensure_future(self._pump(name, proc.stdout, "stdout")),
                                 asyncio.ensure_future(self._pump(name, proc.stderr, "stderr")),
                                 asyncio.ensure_future(self._watch(name, proc))]

    def _launch_path(self, name: str) -> str:
        return f"{self.remote_dir}/launch/{name}.sh"

    def _launch(self, name: str, comp: ProcessComponent) -> str:
        """The ``sh`` script that runs one component: every word quoted, names checked by
        :func:`component_env`, no NUL anywhere (DeployError otherwise)."""
        env = component_env(self.name, self.spec, name, comp, self.buses)
        argv = expand_argv(comp.argv, self.reach.python)
        check_argv(self.name, name, argv)
        cwd = f"{self.remote_dir}/bundle/{bundles.FILES}/{name}"
        exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
        return LAUNCH.format(cwd=shlex.quote(cwd), exports=exports, argv=" ".join(map(shlex.quote, argv)),
                             grace=self.grace_ns / 1e9)

    async def _pump(self, name: str, stream: asyncssh.SSHReader, kind: str) -> None:
        while line := await stream.readline():
            self.console(ConsoleLine(clock.now_ns(), name, line.rstrip("\n").rstrip("\r"), kind))

    async def _watch(self, name: str, proc: asyncssh.SSHClientProcess) -> None:
        done = await proc.wait(check=False)
        status = done.exit_status if done.exit_status is not None else 255  # connection lost
        self._exits[name] = -(status - 128) if 128 < status <= 128 + 64 else status  # sh: 128 + signal

    def _alive(self) -> None:
        for name, code in list(self._exits.items()):
            self._run(self._drain([name]))
            raise crashed(self.name, name, code, self.log, self.state)

    async def _drain(self, names: list[str]) -> None:
        """Let the console readers (and exit watcher) of ``names`` reach the end of their streams."""
        tasks = [t for n in names for t in self._pumps.get(n, [])]
        if tasks:
            await asyncio.wait(tasks, timeout=_SLACK_S)

    async def _stop_all(self) -> None:
        procs, self._procs = self._procs, {}
        for proc in procs.values():
            with contextlib.suppress(OSError):  # already gone
                proc.stdin.write_eof()
        for proc in procs.values():
            try:
                await asyncio.wait_for(proc.wait(check=False), self.grace_ns / 1e9 + _SLACK_S)
            except TimeoutError:
                proc.close()
        await self._drain(list(procs))
        self._pumps = {}
        if self._conn is not None:
            try:
                parent = shlex.quote(self.remote_dir.rsplit("/", 1)[0])
                await self._conn.run(f"rm -rf -- {shlex.quote(self.remote_dir)}; rmdir -- {parent} 2>/dev/null",
                                     check=False)
            finally:
                self._conn.close()
                await self._conn.wait_closed()
                self._conn = None
