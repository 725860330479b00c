"""Dispatch over a real Dask scheduler and two ``hil worker`` processes on loopback, each owning one
emulated rig."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hil.cluster.dispatch import Lab
from hil.errors import ClusterError

from .cluster import RIGS, HilWorker, Scheduler


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """Scheduler + worker A (rig sim-lab-a) + worker B (rig sim-lab-b); yields (Lab, A, B)."""
    sched = Scheduler(tmp_path_factory.mktemp("scheduler"))
    workers = []
    try:
        for name in ("a", "b"):
            workers.append(HilWorker(sched.address, tmp_path_factory.mktemp(f"host-{name}"),
                                     str(RIGS / f"sim-lab-{name}.yaml")))
        with Lab(sched.address) as client:
            client.client.wait_for_workers(2, timeout=120)
            yield client, *workers
    finally:
        for w in workers:
            w.stop()
        sched.stop()


def test_each_worker_offers_its_rig_as_a_resource(lab):
    client, a, b = lab
    offers = client.offers()
    assert set(offers) == {"sim-lab-a", "sim-lab-b"}
    assert len(offers["sim-lab-a"]) == len(offers["sim-lab-b"]) == 1
    assert offers["sim-lab-a"] != offers["sim-lab-b"]
    assert a.banner.endswith(f"serving rig-sim-lab-a=1 to {client.address}\n")
    assert a.banner.startswith("worker ") and "/sim-lab-a at tcp://127.0.0.1:" in a.banner
    resources = {tuple(info["resources"].items())
                 for info in client.client.scheduler_info(n_workers=-1)["workers"].values()}
    assert resources == {(("rig-sim-lab-a", 1),), (("rig-sim-lab-b", 1),)}


def test_a_rig_no_worker_offers_is_an_error_before_anything_is_submitted(lab):
    client = lab[0]
    with pytest.raises(ClusterError) as err:
        client.bench_runner("sim-lab-c")
    assert str(err.value) == (
        f"no worker at {client.address} offers rig 'sim-lab-c'; rigs offered: "
        f"sim-lab-a ({client.offers()['sim-lab-a'][0]}), sim-lab-b ({client.offers()['sim-lab-b'][0]})")
    assert client.client.processing() == {w: () for w in client.client.processing()}


def test_unreachable_scheduler_is_a_cluster_error(tmp_path):
    import socket

    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ClusterError, match=rf"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}"):
        Lab(f"tcp://127.0.0.1:{port}", timeout=1)


def test_worker_refuses_a_bad_rig_file_and_a_rig_given_twice(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nbuses: {}\n")
    hil = [sys.executable, "-c", "from hil.cli import main; main()", "worker", "--scheduler", "tcp://127.0.0.1:1"]
    out = subprocess.run([*hil, str(bad)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.startswith(f"error: {bad}:2:1: buses: ")
    twice = RIGS / "sim-lab-a.yaml"
    copy = tmp_path / "copy.yaml"
    copy.write_text(twice.read_text())
    out = subprocess.run([*hil, str(twice), str(copy)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert f"rig 'sim-lab-a' is given twice: {twice} and {copy}" in out.stderr
