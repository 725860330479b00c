"""What runs on the worker: one bench under the rig's lease, and packing a run folder to send back.

These functions are pickled by reference, so the worker imports them from its own hil install.
"""

from __future__ import annotations

import io
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil import cancel
from hil.clock import now_ns

#: How long the watcher of a bench's cancel event waits in the scheduler at a time, seconds.
CANCEL_POLL_S = 1.0


@dataclass(frozen=True)
class Placement:
    """Where and when one bench ran: worker, host, its run folder there, run-clock start and end."""

    bench: str
    rig: str
    worker: str
    host: str
    run_dir: str
    bench_dir: str  # the bench's folder inside run_dir
    started_ns: int
    ended_ns: int
    events: int = 0  # progress events published (the submitter waits for them all)


@dataclass(frozen=True)
class BenchJob:
    """One bench to run on the host that owns ``rig``; ``run_name`` names the run folder there."""

    rig: str
    suite: str
    bench: str
    run_name: str
    repeat: int = 0
    topic: str | None = None  # Dask event topic that progress events are published on
    cancel: str | None = None  # Dask Event that the submitter sets to cancel the bench
    stacks: tuple[tuple[str, str], ...] = ()  # the suite's stacks replaced: (OLD, NEW), as --stack gave them


def run_bench_job(job: BenchJob) -> tuple[Any, Placement]:
    """Run ``job`` with the runner's ``run_bench`` under the rig's lease; return its result and where it ran."""
    from distributed import get_worker

    from hil.bench import BenchOptions, run_bench
    from hil.bench.lease import Lease
    from hil.bench.runner import Interrupted, bench_folder
    from hil.cluster.retry import set_aside
    from hil.cluster.worker import lab_host

    host, worker = lab_host(), get_worker()
    run_dir = host.runs / job.run_name
    set_aside(run_dir / bench_folder(job.bench, job.repeat))  # an earlier attempt's, on a retry
    published = []

    def publish(event: Any) -> None:
        assert job.topic is not None  # published only to a job's topic (on_event below)
        worker.log_event(job.topic, event.to_json())
        published.append(event.phase)

    started = now_ns()
    with _cancelled_from_afar(job.cancel), \
            Lease(job.rig, wait=host.lease_wait, command=f"hil worker: {job.suite} {job.bench}"):
        try:
            result = run_bench(host.rig_path(job.rig), host.suite_path(job.suite), job.bench, run_dir,
                               options=BenchOptions(repeat=job.repeat, on_event=publish if job.topic else None,
                                                    stacks=dict(job.stacks)))
        except Interrupted as exc:  # torn down; a KeyboardInterrupt must not escape into Dask's thread
            result = exc.result
    place = Placement(job.bench, job.rig, worker.address, host.host, str(run_dir),
                      _bench_folder(result, run_dir), started, now_ns(), len(published))
    return result, place


_running: set[threading.Event] = set()  # the cancel events of the benches this worker process runs


def cancel_running() -> int:
    """Cancel every bench this worker process runs (it is stopping); returns how many there were."""
    running = list(_running)
    for event in running:
        event.set()
    return len(running)


@contextmanager
def _cancelled_from_afar(name: str | None) -> Iterator[None]:
    """Within the block, this thread's bench is cancelled (:mod:`hil.cancel`) by the worker
    stopping (:func:`cancel_running`) or by the submitter setting the Dask Event ``name``, which a
    watcher thread waits on in the scheduler."""
    local = threading.Event()
    _running.add(local)
    try:
        with cancel.cancelled_by(local), (_watching(name, local) if name else nullcontext()):
            yield
    finally:
        _running.discard(local)


@contextmanager
def _watching(name: str, local: threading.Event) -> Iterator[None]:
    """A watcher thread that sets ``local`` once the Dask Event ``name`` is set."""
    from distributed import Event, get_client

    remote, over = Event(name, client=get_client()), threading.Event()

    def watch() -> None:
        try:
            while not over.is_set():
                if remote.wait(timeout=CANCEL_POLL_S):
                    local.set()
                    return
        except Exception:  # noqa: BLE001 - the worker is shutting down: nobody is left to cancel
            return

    watcher = threading.Thread(target=watch, name=f"hil-cancel-{name}", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        over.set()
        watcher.join()


def rig_file(rig: str) -> tuple[str, str]:
    """The rig file the worker serves ``rig`` from: its path (relative to the worker's ``--root``
    when inside it) and its text."""
    from hil.cluster.worker import lab_host

    host = lab_host()
    path = host.rig_path(rig)
    shown = path.relative_to(host.root) if path.is_relative_to(host.root) else path
    return str(shown), path.read_text(encoding="utf-8")


def pack_dir(path: str, inside: str) -> bytes:
    """``path/inside`` as a gzip'd tar (members relative to ``path``), to fetch a bench's artifacts."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(Path(path) / inside, arcname=inside)
    return buf.getvalue()


def unpack_into(data: bytes, dest: Path) -> None:
    """The other side of :func:`pack_dir`: extract safely (no absolute paths, links or devices)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(dest, filter="data")


def _bench_folder(result: Any, run_dir: Path) -> str:
    """The bench's folder, relative to the run folder."""
    return str(Path(result.dir).relative_to(run_dir))
