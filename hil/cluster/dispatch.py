"""The submitting side: send benches to the lab host that owns their rig, and bring results back.

:class:`Lab` is a connection to the Dask scheduler. ``lab.bench_runner(rig)`` returns a callable with
the signature of :func:`hil.bench.run_bench`, so the suite runner uses it unchanged
(``SuiteOptions(run_bench=...)``): each call submits one task with the rig's resource, relays the
bench's progress events as they happen, and returns the worker's ``BenchResult``. A rig that no
worker offers is an error before anything is submitted, and a task whose rig disappears while it
waits (the worker went away) ends as an ``error`` verdict instead of pending forever. Ctrl-C (or
a cancelled rig thread) cancels the bench on the worker, which tears the rig down as it would
locally, and ends the suite with that bench's ``error`` result.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hil import cancel
from hil.cluster.tasks import BenchJob, Placement, pack_dir, rig_file, run_bench_job, unpack_into
from hil.cluster.worker import resource_name
from hil.errors import ClusterError, HilError, SpecError

if TYPE_CHECKING:
    from distributed import Security

    from hil.bench import BenchEvent, BenchOptions
    from hil.results import BenchResult

#: How often a waiting submission checks that its rig is still offered, seconds.
RECHECK_S = 2.0
#: How long a finished bench's last progress events may trail its result, seconds.
EVENT_GRACE_S = 10.0
#: How long Ctrl-C waits for a remote bench's teardown and its result, seconds.
REMOTE_TEARDOWN_S = 60.0


class Lab:
    """A connection to the lab's scheduler (``tcp://`` or ``tls://``; TLS settings from dask config
    or ``security``)."""

    def __init__(self, address: str, *, security: Security | None = None, timeout: float = 10.0):
        from distributed import Client

        self.address = address
        if address.startswith("tls://") and security is None:
            from distributed.security import Security

            security = Security()  # from dask config: distributed.comm.tls.*
            if getattr(security, "tls_ca_file", None) is None or getattr(security, "tls_client_cert", None) is None:
                raise ClusterError(f"the scheduler at {address} speaks TLS, but no TLS settings were found: "
                                   "set distributed.comm.tls.ca-file and .client.cert/.key in the dask "
                                   "config (see docs/lab.md)")
        try:
            self.client = Client(address, security=security, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {address}: {exc}") from None

    def offers(self) -> dict[str, list[str]]:
        """rig name → addresses of the workers that offer it, as the scheduler knows them now."""
        out: dict[str, list[str]] = {}
        # asked of the scheduler directly: Client.scheduler_info() hands back a cached copy that the
        # client's own periodic refresh (which lists no workers) may just have replaced
        identity = self.client.sync(self.client.scheduler.identity, n_workers=-1)
        for addr, info in identity["workers"].items():
            for res in info.get("resources", {}):
                if res.startswith("rig-"):
                    out.setdefault(res.removeprefix("rig-"), []).append(addr)
        return out

    def require(self, rigs: list[str]) -> None:
        """Raise ClusterError naming every rig that no worker offers (and what is offered)."""
        offered = self.offers()
        missing = [r for r in rigs if r not in offered]
        if missing:
            have = ", ".join(f"{r} ({', '.join(w)})" for r, w in sorted(offered.items())) or "none"
            raise ClusterError(f"no worker at {self.address} offers rig {', '.join(map(repr, missing))}; "
                               f"rigs offered: {have}")

    def fetch_rig(self, rig: str, dest: Path) -> Path:
        """The rig file the owning worker serves ``rig`` from, so the suite is checked against the
        very rig it runs on: the same file in this checkout when it is identical (its relative
        paths, such as ``health:``, then resolve here too), else a copy written into ``dest``."""
        self.require([rig])
        worker = self.offers()[rig][0]
        where, text = self.client.submit(rig_file, rig, workers=[worker], allow_other_workers=False,
                                         pure=False).result()
        local = Path(where)
        if not local.is_absolute() and local.is_file() and local.read_text(encoding="utf-8") == text:
            return local
        dest.mkdir(parents=True, exist_ok=True)
        path = dest / local.name
        path.write_text(text, encoding="utf-8")
        return path

    def bench_runner(self, rig: str, *, fetch_artifacts: bool = False) -> RemoteBenchRunner:
        self.require([rig])
        return RemoteBenchRunner(self, rig, fetch_artifacts)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RemoteBenchRunner:
    """``run_bench`` on the worker that owns ``rig``; ``placements`` records where each bench ran.

    On the worker, the run folder is ``--runs/<local run folder name>-<tag>``: the tag keeps runs
    from different submitters (that may pick the same folder name) apart."""

    def __init__(self, lab: Lab, rig: str, fetch_artifacts: bool):
        self.lab, self.rig, self.fetch_artifacts = lab, rig, fetch_artifacts
        self.tag = uuid.uuid4().hex[:6]
        self.placements: list[Placement] = []
        self._lock = threading.Lock()

    def __call__(self, rig_path: str | Path, suite_path: str | Path, bench: str, run_dir: Path,
                 options: BenchOptions | None = None) -> BenchResult:
        client = self.lab.client
        topic = f"hil-progress-{uuid.uuid4().hex}"
        on_event = getattr(options, "on_event", None)
        relay = _Relay(on_event) if on_event is not None else None
        if relay is not None:
            client.subscribe_topic(topic, relay)
        cancel = f"hil-cancel-{uuid.uuid4().hex}"
        job = BenchJob(self.rig, _portable(suite_path), bench, f"{Path(run_dir).name}-{self.tag}",
                       repeat=getattr(options, "repeat", 0), topic=topic if on_event else None, cancel=cancel,
                       stacks=tuple(getattr(options, "stacks", {}).items()))
        future = client.submit(run_bench_job, job, resources={resource_name(self.rig): 1}, pure=False,
                               key=f"hil-{self.rig}-{bench}-{uuid.uuid4().hex[:8]}")
        try:
            result, place, interrupted = self._wait(future, bench, cancel)
        except (ClusterError, _TaskFailed) as exc:
            from hil.bench import BenchResult

            kind = exc.kind if isinstance(exc, _TaskFailed) else type(exc).__name__
            return BenchResult.error_result(bench, str(exc), repeat=job.repeat, rig=self.rig,
                                            error_kind=kind, phase="dispatch")
        else:
            if relay is not None:  # events travel apart from the result: let the last ones arrive
                relay.wait_for(place.events, EVENT_GRACE_S)
        finally:
            if relay is not None:
                client.unsubscribe_topic(topic)
        with self._lock:
            self.placements.append(place)
        result.files["remote"] = {"worker": place.worker, "host": place.host,  # where its recording stays
                                  "folder": str(Path(place.run_dir) / place.bench_dir)}
        if self.fetch_artifacts:
            self._fetch(place, Path(run_dir))
        if interrupted:
            from hil.bench.runner import Interrupted, record_stop
            from hil.lifecycle.signals import Stopped, received

            stop = Stopped(received())
            if result.error_kind == "KeyboardInterrupt":  # the worker knew only that it was cancelled
                record_stop(result, stop)
            raise Interrupted(result, stop.signum)
        return result

    def _wait(self, future: Any, bench: str, cancel_event: str) -> tuple[Any, Placement, bool]:
        """The bench's result, where it ran, and whether Ctrl-C cut it short."""
        try:
            while True:
                cancel.check()  # Ctrl-C or SIGTERM with several rigs: the bench is cancelled below
                try:
                    return *future.result(timeout=RECHECK_S), False
                except TimeoutError:
                    if future.status == "error":  # the task itself raised TimeoutError
                        raise
                    # else still running, or it finished just as the wait timed out: ask again
                if future.status == "pending" and self.rig not in self.lab.offers():
                    raise ClusterError(f"bench {bench!r}: no worker offers rig {self.rig!r} any more "
                                       f"(its worker left the scheduler at {self.lab.address})")
        except KeyboardInterrupt:
            return *self._cancel(future, cancel_event), True
        except (SpecError, ClusterError):
            future.cancel()
            raise
        except Exception as exc:
            what = str(exc) if isinstance(exc, HilError) else f"{type(exc).__name__}: {exc}"
            raise _TaskFailed(f"bench {bench!r} on rig {self.rig!r}: {what}", type(exc).__name__) from None

    def _cancel(self, future: Any, name: str) -> tuple[Any, Placement]:
        """Ctrl-C while the bench runs remotely: cancel it on the worker and wait (at most
        ``REMOTE_TEARDOWN_S``; a second Ctrl-C stops waiting) for its teardown and its result."""
        from distributed import Event

        event = Event(name, client=self.lab.client)
        event.set()
        try:
            result, place = future.result(timeout=REMOTE_TEARDOWN_S)
        except BaseException:  # no result in time, a second Ctrl-C, or the task failed
            future.cancel()
            raise KeyboardInterrupt from None
        finally:
            event.clear()  # a cleared event nobody waits on is gone from the scheduler
        return result, place

    def _fetch(self, place: Placement, run_dir: Path) -> None:
        """Copy the bench's folder from the worker's run folder into the local one."""
        data = self.lab.client.submit(pack_dir, place.run_dir, place.bench_dir, workers=[place.worker],
                                      allow_other_workers=False, pure=False).result()
        unpack_into(data, run_dir)


class _Relay:
    """Hands the progress events of one bench, as Dask delivers them, to ``on_event``."""

    def __init__(self, on_event: Callable[[BenchEvent], None]):
        from hil.bench import BenchEvent

        self.on_event, self.event_class = on_event, BenchEvent
        self.received = 0
        self._arrived = threading.Condition()

    def __call__(self, event: tuple[float, dict]) -> None:
        names = self.event_class.__dataclass_fields__  # Dask adds the worker's address to each event
        self.on_event(self.event_class(**{k: v for k, v in event[1].items() if k in names}))
        with self._arrived:
            self.received += 1
            self._arrived.notify_all()

    def wait_for(self, count: int, timeout: float) -> None:
        with self._arrived:
            self._arrived.wait_for(lambda: self.received >= count, timeout)


class _TaskFailed(Exception):
    """The task raised on the worker (its message already says what and where)."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


def _portable(suite: str | Path) -> str:
    """The suite path to send: relative to this folder when inside it (workers resolve it against
    their ``--root``), else absolute."""
    path = Path(suite).resolve()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
