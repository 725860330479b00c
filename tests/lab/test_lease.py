"""Rig leases between real processes: fail fast naming the holder, wait, reclaim, release on signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hil import cancel
from hil.bench.lease import Lease, LeaseRecord, known_rigs, status
from hil.errors import EXIT_INFRA, RigBusyError

HOLDER = Path(__file__).with_name("lease_holder.py")


class Holder:
    """A lease_holder.py process; ``record`` is its lease once it holds it."""

    def __init__(self, lock_dir: Path, rig: str, wait: float | None = None, *extra: str):
        env = {**os.environ, "HIL_LOCK_DIR": str(lock_dir), "HIL_CI_JOB": "nightly#42"}
        self.proc = subprocess.Popen(
            [sys.executable, str(HOLDER), rig, "-" if wait is None else str(wait), *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.record: dict | None = None

    def held(self) -> dict:
        line = self.proc.stdout.readline()
        assert line, f"holder exited without the lease: {self.proc.stderr.read()}"
        self.record = json.loads(line)
        return self.record

    def release(self) -> tuple[int, str]:
        self.proc.stdin.write("release\n")
        self.proc.stdin.flush()
        return self.finish()

    def finish(self) -> tuple[int, str]:
        _, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, err


@pytest.fixture
def lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HIL_LOCK_DIR", str(tmp_path))
    return tmp_path


def test_second_taker_fails_fast_naming_the_holder(lock_dir):
    first = Holder(lock_dir, "sim-a")
    rec = first.held()
    second = Holder(lock_dir, "sim-a")
    code, err = second.finish()
    assert code == EXIT_INFRA
    assert f"rig 'sim-a' is leased by pid {rec['pid']}" in err
    assert "lease_holder sim-a" in err and "CI job nightly#42" in err and "--wait" in err
    assert first.release()[0] == 0


def test_second_taker_waits_then_runs(lock_dir):
    first = Holder(lock_dir, "sim-a")
    first.held()
    second = Holder(lock_dir, "sim-a", 120)
    # the waiter says whom it waits for, on stderr, before it gets the lease
    assert "waiting up to 120 s" in second.proc.stderr.readline()
    first.release()
    rec = second.held()
    assert rec["pid"] == second.proc.pid
    assert second.release()[0] == 0


def test_wait_times_out_naming_the_holder(lock_dir):
    first = Holder(lock_dir, "sim-a")
    rec = first.held()
    with pytest.raises(RigBusyError, match=rf"still leased by pid {rec['pid']} .* after waiting 0.2 s"):
        Lease("sim-a", wait=0.2).acquire()
    first.release()


def test_a_cancelled_run_stops_waiting_for_the_lease(lock_dir):
    """With several rigs, Ctrl-C cancels each rig's thread (hil.cancel): one queued for a busy rig
    stops waiting at once instead of when the other holder lets go."""
    first = Holder(lock_dir, "sim-a")
    first.held()
    cancelled, outcome = threading.Event(), []

    def queued() -> None:
        with cancel.cancelled_by(cancelled):
            try:
                Lease("sim-a", wait=float("inf")).acquire()
                outcome.append("leased")
            except KeyboardInterrupt:
                outcome.append("cancelled")

    thread = threading.Thread(target=queued)
    thread.start()
    cancelled.set()
    thread.join(30)
    alive = thread.is_alive()
    first.release()
    thread.join()
    assert (alive, outcome) == (False, ["cancelled"])


def test_sigkilled_holder_is_reclaimed_and_logged(lock_dir, caplog):
    first = Holder(lock_dir, "sim-a")
    rec = first.held()
    first.proc.kill()
    first.finish()
    st = status("sim-a")
    assert not st.held and st.stale and st.record.pid == rec["pid"]
    with caplog.at_level("WARNING", logger="hil.bench.lease"), Lease("sim-a") as lease:
        assert lease.reclaimed.pid == rec["pid"]
        assert lease.record.pid == os.getpid()
    assert f"reclaimed the lease of pid {rec['pid']}" in caplog.text
    assert "(holder gone)" in caplog.text


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_stop_signals_release_the_lease(lock_dir, sig):
    first = Holder(lock_dir, "sim-a")
    first.held()
    first.proc.send_signal(sig)
    rc, err = first.finish()
    assert rc == 128 + sig
    assert "finally ran" in err
    st = status("sim-a")
    assert not st.held and st.record is None  # released, and the record removed: nothing to reclaim


def test_sigterm_ends_a_holder_whose_teardown_hangs(lock_dir, monkeypatch):
    """A cancelled CI job must end: after the grace period the process exits 143 anyway; the
    kernel drops its lock, and its record is a leftover that the next taker reclaims."""
    monkeypatch.setenv("HIL_TEARDOWN_GRACE_S", "1")
    holder = Holder(lock_dir, "sim-a", None, "hang")
    rec = holder.held()
    holder.proc.send_signal(signal.SIGTERM)
    holder.proc.send_signal(signal.SIGTERM)  # a second one does not cut the teardown short either
    rc, err = holder.finish()
    assert rc == 143
    assert "finally ran" in err
    assert "error: teardown did not finish within 1 s of SIGTERM; exiting. Where each thread was:" in err
    st = status("sim-a")
    assert not st.held and st.stale and st.record.pid == rec["pid"]
    with Lease("sim-a") as lease:
        assert lease.reclaimed.pid == rec["pid"]


def test_a_lease_installs_no_signal_handler(lock_dir):
    """A lease is a lock and its record; what SIGTERM does is the entry point's business."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    with Lease("sim-a"):
        assert {sig: signal.getsignal(sig) for sig in before} == before


def test_error_inside_the_lease_releases_it(lock_dir):
    with pytest.raises(ZeroDivisionError), Lease("sim-a"):
        1 / 0  # noqa: B018 (the error raised inside the lease)
    assert status("sim-a") == status("sim-a").__class__("sim-a", held=False, record=None)


def test_forked_child_does_not_keep_the_rig(lock_dir):
    first = Holder(lock_dir, "sim-a", None, "fork")
    child = first.held()["child"]
    try:
        first.proc.kill()
        first.finish()
        assert Path(f"/proc/{child}").exists()  # the child lives on ...
        with Lease("sim-a") as lease:  # ... and yet the rig is free
            assert lease.reclaimed is not None
    finally:
        os.kill(child, signal.SIGKILL)


def test_status_and_record_in_process(lock_dir):
    assert known_rigs() == []
    with Lease("sim-b", command="hil run nightly.yaml", ci_job="job-7") as lease:
        st = status("sim-b")
        assert st.held and st.record == lease.record
        assert isinstance(st.record, LeaseRecord) and st.record.ci_job == "job-7"
        assert "running 'hil run nightly.yaml'" in st.record.describe()
        with pytest.raises(RigBusyError):  # a second lease in the same process is refused too
            Lease("sim-b").acquire()
    assert known_rigs() == ["sim-b"]
    assert not status("sim-b").held


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", [
    ["deploy", "rigs/sim-aeb.yaml", "benches/aeb/stack.yaml", "--for", "0"],
    ["flash", "rigs/sim-aeb.yaml", "brake-mcu", "firmware_stubs/brake_ecu"],
    ["replay", "benches/aeb/stimulus/echo.log", "--rig", "rigs/sim-aeb.yaml"],
], ids=["deploy", "flash", "replay"])
def test_commands_that_use_a_rig_take_its_lease(lock_dir, tmp_path, command):
    """A deploy, flash or replay in the middle of someone's run would pull the rig from under it."""
    first = Holder(lock_dir, "sim-aeb")
    rec = first.held()
    env = {**os.environ, "HIL_LOCK_DIR": str(lock_dir), "NO_COLOR": "1"}
    argv = [str(ROOT / a) if (ROOT / a).exists() else a for a in command]
    try:  # from a folder of its own: what a command writes there stays in the test's folder
        r = subprocess.run([sys.executable, "-m", "hil", *argv], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=120)
    finally:
        first.release()
    assert r.returncode == EXIT_INFRA, r.stdout + r.stderr
    assert r.stderr.startswith(f"error: rig 'sim-aeb' is leased by pid {rec['pid']}"), r.stderr
    assert "--wait" in r.stderr


def test_a_group_writable_lock_directory_gets_group_writable_lease_files(tmp_path):
    """A lab host shares one lock directory between its accounts: their leases must open each
    other's files (they were created 0600, and the second account failed with PermissionError)."""
    shared, private = tmp_path / "shared", tmp_path / "private"
    shared.mkdir(mode=0o2770)
    shared.chmod(0o2770)
    private.mkdir(mode=0o700)
    for directory, mode in ((shared, 0o660), (private, 0o600)):
        with Lease("sim-a", directory=directory):
            assert (directory / "sim-a.lease.json").stat().st_mode & 0o777 == mode
        assert (directory / "sim-a.lock").stat().st_mode & 0o777 == mode


POLLER = """
import sys
from hil.bench.lease import status
print("polling", flush=True)
while True:
    status(sys.argv[1])
"""


def test_status_never_makes_a_run_fail(lock_dir):
    """``hil rig status`` took the lock for a moment to see whether it was free, so a run starting
    just then failed as busy (17 % of starts under a tight polling loop). It asks the kernel now."""
    poller = subprocess.Popen([sys.executable, "-c", POLLER, "sim-a"], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "HIL_LOCK_DIR": str(lock_dir)})
    try:
        assert poller.stdout.readline() == "polling\n"
        refused = 0
        for _ in range(300):
            try:
                with Lease("sim-a"):
                    pass
            except RigBusyError:
                refused += 1
        assert poller.poll() is None  # it polled all along
    finally:
        poller.kill()
        poller.wait()
        poller.stdout.close()
    assert refused == 0


LOCKER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(600)
"""


def test_a_busy_message_names_a_holder_that_has_not_written_its_record(lock_dir):
    """Between taking the lock and writing its record a holder is known only to the kernel; a
    record left over by a dead holder must not be named instead."""
    (lock_dir / "sim-a.lease.json").write_text(json.dumps({
        "rig": "sim-a", "pid": 999999999, "host": __import__("socket").gethostname(), "user": "gone",
        "command": "hil run old", "started_at": "2026-01-01T00:00:00+00:00", "started_ns": 0}))
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(lock_dir / "sim-a.lock")], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert locker.stdout.readline() == "locked\n"
        with pytest.raises(RigBusyError) as err:
            Lease("sim-a").acquire()
        assert status("sim-a").held
    finally:
        locker.kill()
        locker.wait()
        locker.stdout.close()
    assert f"rig 'sim-a' is leased by pid {locker.pid} running '{sys.executable} -c " in str(err.value)
    assert "it has not written its lease record yet" in str(err.value)
    assert "hil run old" not in str(err.value)
